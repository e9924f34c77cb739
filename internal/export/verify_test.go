package export

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// realLog opens a SQLite-backed audit log that signs a checkpoint every
// 16 entries.
func realLog(t *testing.T) (*audit.Log, *sqlite.Store, note.Verifier) {
	t.Helper()
	dir := t.TempDir()
	cfg := audit.Config{CheckpointEvery: 16, CheckpointInterval: 50 * time.Millisecond}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	s, v, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "warden-audit")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(context.Background(), st, cfg, s, v, audit.WithLogger(slog.New(slog.DiscardHandler)), audit.WithInstance("gw-1"))
	if err != nil {
		t.Fatal(err)
	}
	return l, st, v
}

var (
	realExportOnce sync.Once
	realExport     []byte
	realExportKey  note.Verifier
	realExportSize int64
	realExportErr  error
)

// exportRealLog writes 300 entries of every kind through a real audit
// log (appended concurrently), exports it with the engine and the file
// sink, and returns the exported file (built once per test binary).
func exportRealLog(t *testing.T) ([]byte, note.Verifier, int64) {
	t.Helper()
	realExportOnce.Do(func() { realExport, realExportKey, realExportSize, realExportErr = buildRealExport(t) })
	if realExportErr != nil {
		t.Fatal(realExportErr)
	}
	return realExport, realExportKey, realExportSize
}

func buildRealExport(t *testing.T) ([]byte, note.Verifier, int64, error) {
	l, st, v := realLog(t)
	defer st.Close()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := 0; w < 4; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 75; i++ {
				k := catalogue[(w*75+i)%len(catalogue)]
				e := sampleEntries(k)[0]
				e.ID, e.Time = "", time.Time{}
				if _, err := l.Append(ctx, e); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "ocsf.jsonl")
	fs, err := NewFileSink(FileConfig{Path: path}, nil)
	if err != nil {
		return nil, nil, 0, err
	}
	tg := target(dir, "file", fs)
	tg.BatchMax = 40
	x, err := New(NewLogSource(st, LogSourceOptions{Poll: 5 * time.Millisecond}), Options{Origin: v.Name(), ProductVersion: "test", Logger: quietLogger()}, tg)
	if err != nil {
		return nil, nil, 0, err
	}
	xctx, stop := context.WithCancel(ctx)
	defer stop()
	done := make(chan error, 1)
	go func() { done <- x.Run(xctx) }()
	wg.Wait()
	if err := l.Close(ctx); err != nil {
		stop()
		<-done
		return nil, nil, 0, err
	}
	size, _ := st.Size(ctx)
	deadline := time.Now().Add(60 * time.Second)
	for x.Status()[0].Cursor < size {
		if time.Now().After(deadline) {
			stop()
			<-done
			return nil, nil, 0, fmt.Errorf("export did not catch up: %+v", x.Status()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	time.Sleep(50 * time.Millisecond) // the final checkpoint (at size) follows the last entry
	stop()
	if err := <-done; err != nil {
		return nil, nil, 0, err
	}
	b, err := os.ReadFile(path)
	return b, v, size, err
}

func TestVerifyRealExport(t *testing.T) {
	b, v, size := exportRealLog(t)
	rep, err := VerifyStream(bytes.NewReader(b), v)
	if err != nil {
		t.Fatalf("VerifyStream: %v", err)
	}
	if rep.Bound != size || rep.Events != int(size) || rep.UnboundTail != 0 || rep.Latest.Size != size || rep.Checkpoints < int(size/16) {
		t.Fatalf("report %+v for a log of %d entries", rep, size)
	}
	// Every line is valid OCSF 1.8.
	s := loadSchemaIfPresent(t)
	for i, line := range lines(b) {
		if s != nil {
			if err := s.Validate(line); err != nil {
				t.Fatalf("line %d is not valid OCSF: %v", i+1, err)
			}
		}
	}
}

func loadSchemaIfPresent(t *testing.T) interface{ Validate([]byte) error } {
	defer func() { recover() }()
	var s interface{ Validate([]byte) error }
	t.Run("schema", func(t *testing.T) { s = loadSchema(t) })
	return s
}

func lines(b []byte) [][]byte {
	var out [][]byte
	for _, l := range bytes.Split(bytes.TrimRight(b, "\n"), []byte("\n")) {
		out = append(out, append([]byte(nil), l...))
	}
	return out
}

func join(ls [][]byte) []byte { return append(bytes.Join(ls, []byte("\n")), '\n') }

// entryLines returns the indexes of entry event lines.
func entryLines(ls [][]byte) []int {
	var out []int
	for i, l := range ls {
		if !bytes.Contains(l, []byte(`"checkpoint":{"size"`)) {
			out = append(out, i)
		}
	}
	return out
}

func editJSON(t *testing.T, line []byte, edit func(m map[string]any)) []byte {
	t.Helper()
	var m map[string]any
	d := json.NewDecoder(bytes.NewReader(line))
	d.UseNumber()
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	edit(m)
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(m); err != nil {
		t.Fatal(err)
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n"))
}

func warden(m map[string]any) map[string]any {
	return m["unmapped"].(map[string]any)["warden"].(map[string]any)
}

// forge re-maps line's entry after edit, recomputing the leaf hash and
// every OCSF field: a careful forger's event.
func forge(t *testing.T, line []byte, edit func(e *audit.Entry)) []byte {
	t.Helper()
	var ev exported
	if err := json.Unmarshal(line, &ev); err != nil {
		t.Fatal(err)
	}
	w := ev.Unmapped.Warden
	e, err := audit.ParseEntry(*w.Seq, w.Entry)
	if err != nil {
		t.Fatal(err)
	}
	edit(e)
	m := Mapper{Origin: w.Origin, ProductVersion: ev.Metadata.Product.Version}
	out, err := m.Entry(e, nil, w.Frontier)
	if err != nil {
		t.Fatal(err)
	}
	return out.JSON
}

// TestVerifyRejectsTampering: removing, altering, reordering, inserting
// or forging any event of a real export is detected.
func TestVerifyRejectsTampering(t *testing.T) {
	b, v, _ := exportRealLog(t)
	orig := lines(b)
	ents := entryLines(orig)
	mid := 0 // an entry line followed by another entry line, half-way
	for k := len(ents) / 2; k+1 < len(ents); k++ {
		if ents[k+1] == ents[k]+1 && !bytes.Contains(orig[ents[k]], []byte(`"frontier":[`)) && !bytes.Contains(orig[ents[k+1]], []byte(`"frontier":[`)) {
			mid = ents[k]
			break
		}
	}
	var lastBeforeCP int // an entry line directly followed by a checkpoint line
	for _, i := range ents[5:] {
		if i+1 < len(orig) && bytes.Contains(orig[i+1], []byte(`"checkpoint":{"size"`)) {
			lastBeforeCP = i
			break
		}
	}
	var firstAnchor int // an entry line after the first that carries a frontier
	for _, i := range ents[1:] {
		if bytes.Contains(orig[i], []byte(`"frontier":[`)) {
			firstAnchor = i
			break
		}
	}
	var cpLine int
	for i, l := range orig {
		if bytes.Contains(l, []byte(`"checkpoint":{"size"`)) && i > 10 {
			cpLine = i
			break
		}
	}
	if mid == 0 || lastBeforeCP == 0 || firstAnchor == 0 || cpLine == 0 {
		t.Fatalf("export shape unexpected: %d %d %d", lastBeforeCP, firstAnchor, cpLine)
	}
	cases := []struct {
		name string
		edit func(ls [][]byte) [][]byte
		want string
	}{
		{"an entry removed", func(ls [][]byte) [][]byte { return del(ls, mid) }, "missing"},
		{"the entry before a checkpoint removed", func(ls [][]byte) [][]byte { return del(ls, lastBeforeCP) }, "missing"},
		{"two entries swapped", func(ls [][]byte) [][]byte { ls[mid], ls[mid+1] = ls[mid+1], ls[mid]; return ls }, "expected"},
		{"an entry duplicated with a change", func(ls [][]byte) [][]byte {
			bad := editJSON(t, ls[mid], func(m map[string]any) { m["message"] = "hidden" })
			return ins(ls, mid+1, bad)
		}, "altered"},
		{"an entry line repeated", func(ls [][]byte) [][]byte { return ins(ls, mid+1, ls[mid-1]) }, ""},
		// Entry 0 again mid-stream reads as a re-send from the start
		// (accepted when the whole range follows, TestCursorInterval);
		// alone it leaves entries missing.
		{"entry 0 repeated alone", func(ls [][]byte) [][]byte { return ins(ls, mid+1, ls[ents[0]]) }, "missing"},
		{"an OCSF field altered", func(ls [][]byte) [][]byte {
			ls[mid] = editJSON(t, ls[mid], func(m map[string]any) {
				// Another severity than the entry's own (the entry at mid
				// depends on the appends' order: it may be a Critical one).
				if m["severity_id"] == json.Number("5") {
					m["severity_id"], m["severity"] = json.Number("1"), "Informational"
				} else {
					m["severity_id"], m["severity"] = json.Number("5"), "Critical"
				}
			})
			return ls
		}, "severity differs"},
		{"the actor changed", func(ls [][]byte) [][]byte {
			ls[mid] = editJSON(t, ls[mid], func(m map[string]any) {
				if a, ok := m["actor"].(map[string]any); ok {
					a["user"] = map[string]any{"uid": "mallory"}
				} else {
					m["message"] = "x"
				}
			})
			return ls
		}, "differs"},
		{"the embedded entry altered", func(ls [][]byte) [][]byte {
			ls[mid] = editJSON(t, ls[mid], func(m map[string]any) {
				e := warden(m)["entry"].(map[string]any)
				e["instance"] = "gw-evil"
			})
			return ls
		}, "does not hash to the event's leaf hash"},
		{"an entry forged with consistent fields and leaf hash", func(ls [][]byte) [][]byte {
			ls[mid] = forge(t, ls[mid], func(e *audit.Entry) { e.Instance = "gw-evil" })
			return ls
		}, "does not match the e"},
		{"a forged entry inserted", func(ls [][]byte) [][]byte {
			f := forge(t, ls[mid], func(e *audit.Entry) { e.Seq++; e.Instance = "gw-evil" })
			return ins(ls, mid+1, f)
		}, ""},
		{"a frontier forged", func(ls [][]byte) [][]byte {
			ls[firstAnchor] = forge(t, ls[firstAnchor], func(e *audit.Entry) {})
			ls[firstAnchor] = editJSON(t, ls[firstAnchor], func(m map[string]any) {
				fr := warden(m)["frontier"].([]any)
				fr[0] = tlog.Hash{7}.String()
			})
			return ls
		}, "frontier"},
		{"a checkpoint's signature altered", func(ls [][]byte) [][]byte {
			ls[cpLine] = editJSON(t, ls[cpLine], func(m map[string]any) {
				c := warden(m)["checkpoint"].(map[string]any)
				n := c["note"].(string)
				c["note"] = strings.Replace(n, "\n— warden-audit ", "\n— warden-audit AAAA", 1)
			})
			return ls
		}, "checkpoint"},
		{"a checkpoint's fields altered", func(ls [][]byte) [][]byte {
			ls[cpLine] = editJSON(t, ls[cpLine], func(m map[string]any) {
				warden(m)["checkpoint"].(map[string]any)["size"] = json.Number("1")
			})
			return ls
		}, "do not match its signed checkpoint"},
		{"every checkpoint removed", func(ls [][]byte) [][]byte {
			var out [][]byte
			for _, l := range ls {
				if !bytes.Contains(l, []byte(`"checkpoint":{"size"`)) {
					out = append(out, l)
				}
			}
			return out
		}, "no signed checkpoint"},
		{"a line cut short", func(ls [][]byte) [][]byte { ls[mid] = ls[mid][:len(ls[mid])/2]; return ls }, "not an event"},
		{"not an export", func(ls [][]byte) [][]byte { return [][]byte{[]byte(`{"a":1}`)} }, "not a Warden export"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			ls := make([][]byte, len(orig))
			for i := range orig {
				ls[i] = append([]byte(nil), orig[i]...)
			}
			_, err := VerifyStream(bytes.NewReader(join(tc.edit(ls))), v)
			var se *StreamError
			if !errors.As(err, &se) {
				t.Fatalf("tampering not detected (err %v)", err)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not say %q", err, tc.want)
			}
		})
	}
}

func TestVerifyWrongKey(t *testing.T) {
	b, _, _ := exportRealLog(t)
	_, vk, _ := note.GenerateKey(nil, "warden-audit")
	v, _ := note.NewVerifier(vk)
	if _, err := VerifyStream(bytes.NewReader(b), v); err == nil || !strings.Contains(err.Error(), "signature") {
		t.Fatalf("another key's verifier accepted the export: %v", err)
	}
	_, vk, _ = note.GenerateKey(nil, "other-log")
	v, _ = note.NewVerifier(vk)
	if _, err := VerifyStream(bytes.NewReader(b), v); err == nil || !strings.Contains(err.Error(), "is from log") {
		t.Fatalf("another log's key accepted the export: %v", err)
	}
}

// TestVerifyEveryLineRemoved removes each line of a short export in turn:
// every removal of an entry is detected; removing a checkpoint leaves a
// stream that still verifies (the next checkpoint covers its entries).
func TestVerifyEveryLineRemoved(t *testing.T) {
	b, v, _ := exportRealLog(t)
	orig := lines(b)
	orig = orig[:45] // the head of the export (ends after a checkpoint below)
	for len(orig) > 0 && !bytes.Contains(orig[len(orig)-1], []byte(`"checkpoint":{"size"`)) {
		orig = orig[:len(orig)-1]
	}
	if _, err := VerifyStream(bytes.NewReader(join(orig)), v); err != nil {
		t.Fatalf("the head of the export does not verify: %v", err)
	}
	for i := range orig[:len(orig)-1] {
		ls := del(append([][]byte(nil), orig...), i)
		rep, err := VerifyStream(bytes.NewReader(join(ls)), v)
		isCP := bytes.Contains(orig[i], []byte(`"checkpoint":{"size"`))
		// Cutting the head of a stream at a batch boundary leaves a
		// stream that begins later, which the report says.
		if !isCP && err == nil && rep.First == 0 {
			t.Errorf("removing line %d (an entry) was not detected", i+1)
		}
		if isCP && err != nil {
			t.Errorf("removing checkpoint line %d: %v", i+1, err)
		}
	}
}

// TestVerifyDropParams: a stream without parameters verifies by position
// and leaf; its content is reported as not bound.
func TestVerifyDropParams(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 60, 20)
	tg := target(t.TempDir(), "p", &recordSink{})
	tg.DropParams = true
	s := tg.Sink.(*recordSink)
	startExporter(t, l, tg)
	waitFor(t, "everything", func() bool { return len(s.events()) == 63 })
	for _, e := range s.events() {
		if bytes.Contains(e.JSON, []byte(`"temperature"`)) || bytes.Contains(e.JSON, []byte(`"entry":`)) {
			t.Fatalf("parameters exported: %s", e.JSON)
		}
	}
	_, v := testKeys(t)
	rep, err := VerifyStream(bytes.NewReader(streamOf(s.events())), v)
	if err != nil {
		t.Fatal(err)
	}
	if rep.ContentUnbound != 60 || rep.Bound != 60 {
		t.Fatalf("report %+v", rep)
	}
}

// TestVerifyFileRotation: with rotation after every batch, every file
// starts with a frontier, and the files in order verify as one stream.
func TestVerifyFileRotation(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 200, 25)
	dir := t.TempDir()
	fs, err := NewFileSink(FileConfig{Path: filepath.Join(dir, "out", "ocsf.jsonl"), MaxAge: time.Nanosecond}, nil)
	if err != nil {
		t.Fatal(err)
	}
	tg := target(dir, "file", fs)
	tg.BatchMax = 30
	h := startExporter(t, l, tg)
	waitFor(t, "every event", func() bool { return h.x.Status()[0].Delivered == 208 })
	h.shutdown()
	files, _ := fs.Rotated()
	if _, err := os.Stat(filepath.Join(dir, "out", "ocsf.jsonl")); err == nil {
		files = append(files, filepath.Join(dir, "out", "ocsf.jsonl"))
	}
	if len(files) < 7 {
		t.Fatalf("%d rotated files", len(files))
	}
	var all []byte
	for _, f := range files {
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		first := lines(b)[0]
		if !bytes.Contains(first, []byte(`"frontier":[`)) && !bytes.Contains(first, []byte(`"seq":0,`)) {
			t.Fatalf("%s does not start with a frontier: %.200s", f, first)
		}
		all = append(all, b...)
	}
	_, v := testKeys(t)
	rep, err := VerifyStream(bytes.NewReader(all), v)
	if err != nil || rep.Bound != 200 {
		t.Fatalf("rotated files: %+v %v", rep, err)
	}
}

func del(ls [][]byte, i int) [][]byte { return append(ls[:i:i], ls[i+1:]...) }

func ins(ls [][]byte, i int, l []byte) [][]byte {
	out := append([][]byte(nil), ls[:i]...)
	out = append(out, l)
	return append(out, ls[i:]...)
}
