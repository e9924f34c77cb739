package recording

import (
	"bytes"
	"fmt"
	"math/rand/v2"
	"net/http"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"
)

// fakeClock advances by step on every reading.
type fakeClock struct {
	t    time.Time
	step time.Duration
}

func (c *fakeClock) now() time.Time { c.t = c.t.Add(c.step); return c.t }

func testCapture(t *testing.T, sse bool, clk *fakeClock) *Capture {
	t.Helper()
	r := &Recorder{now: clk.now, maxSize: 1 << 30, spill: t.TempDir(), thresh: 1 << 20, budget: &budget{max: 1 << 30}}
	c := &Capture{r: r, info: Info{RequestID: "r", Start: clk.t, Level: LevelFull}, id: testID, lineBeg: true}
	c.marks = &spillBuffer{dir: r.spill, threshold: r.thresh, budget: r.budget}
	c.body = &spillBuffer{dir: r.spill, threshold: r.thresh, budget: r.budget, encrypt: true}
	h := http.Header{}
	if sse {
		h.Set("Content-Type", "text/event-stream; charset=utf-8")
	} else {
		h.Set("Content-Type", "application/json")
	}
	c.WriteHeader(200, h)
	t.Cleanup(c.release)
	return c
}

// marksOf finishes the capture's marks (as Finish does) and parses them.
func marksOf(t *testing.T, c *Capture) []Mark {
	t.Helper()
	c.flushPend()
	if c.size > 0 && (c.nMarks == 0 || c.lastEnd() < c.size) {
		c.pend, c.hasPend = Mark{End: c.size, AtNS: c.lastAt}, true
		c.flushPend()
	}
	body, err := c.marks.Body()
	if err != nil {
		t.Fatal(err)
	}
	var buf bytes.Buffer
	buf.ReadFrom(body.R)
	var out []Mark
	for _, line := range strings.Split(strings.TrimSuffix(buf.String(), "\n"), "\n") {
		if line == "" {
			continue
		}
		var m Mark
		fmt.Sscanf(line, "%d %d", &m.End, &m.AtNS)
		out = append(out, m)
	}
	return out
}

func ends(ms []Mark) string {
	var s []string
	for _, m := range ms {
		s = append(s, strconv.FormatInt(m.End, 10))
	}
	return strings.Join(s, ",")
}

const sseSample = "data: a\n\n" + // LF
	"data: b\r\n\r\n" + // CRLF
	"data: c\r\r" + // CR
	": comment\n\n" +
	"id: 1\nevent: x\ndata: d\ndata: d2\n\n" +
	"data: e\r\n\n" + // mixed
	"\n" + // an empty event
	"data: tail without end"

func TestSSEBoundaries(t *testing.T) {
	c := testCapture(t, true, &fakeClock{t: time.Unix(0, 0), step: time.Millisecond})
	c.Write([]byte(sseSample))
	ms := marksOf(t, c)
	// Each event ends after its blank line (a CRLF counts as one line end).
	want := []int{
		len("data: a\n\n"),
		len("data: a\n\ndata: b\r\n\r\n"),
		len("data: a\n\ndata: b\r\n\r\ndata: c\r\r"),
		len("data: a\n\ndata: b\r\n\r\ndata: c\r\r: comment\n\n"),
		len("data: a\n\ndata: b\r\n\r\ndata: c\r\r: comment\n\nid: 1\nevent: x\ndata: d\ndata: d2\n\n"),
		len("data: a\n\ndata: b\r\n\r\ndata: c\r\r: comment\n\nid: 1\nevent: x\ndata: d\ndata: d2\n\ndata: e\r\n\n"),
		len("data: a\n\ndata: b\r\n\r\ndata: c\r\r: comment\n\nid: 1\nevent: x\ndata: d\ndata: d2\n\ndata: e\r\n\n\n"),
		len(sseSample),
	}
	var w []string
	for _, n := range want {
		w = append(w, strconv.Itoa(n))
	}
	if got := ends(ms); got != strings.Join(w, ",") {
		t.Errorf("marks end at %s, want %s", got, strings.Join(w, ","))
	}
	if c.events != 7 {
		t.Errorf("%d events, want 7 (the tail is not an event)", c.events)
	}
}

// TestSSEBoundariesAnySplit: the same marks whatever the write sizes —
// every single split point, byte by byte, and random splits.
func TestSSEBoundariesAnySplit(t *testing.T) {
	ref := testCapture(t, true, &fakeClock{t: time.Unix(0, 0), step: time.Millisecond})
	ref.Write([]byte(sseSample))
	want := ends(marksOf(t, ref))
	b := []byte(sseSample)
	check := func(name string, parts [][]byte) {
		t.Helper()
		c := testCapture(t, true, &fakeClock{t: time.Unix(0, 0), step: time.Millisecond})
		for _, p := range parts {
			c.Write(p)
		}
		if got := ends(marksOf(t, c)); got != want || c.events != ref.events {
			t.Fatalf("%s: marks %s (%d events), want %s (%d)", name, got, c.events, want, ref.events)
		}
	}
	for i := 1; i < len(b); i++ {
		check(fmt.Sprintf("split at %d", i), [][]byte{b[:i], b[i:]})
	}
	var bytewise [][]byte
	for i := range b {
		bytewise = append(bytewise, b[i:i+1])
	}
	check("byte by byte", bytewise)
	rng := rand.New(rand.NewPCG(1, 2))
	for n := range 200 {
		var parts [][]byte
		for rest := b; len(rest) > 0; {
			k := 1 + rng.IntN(min(len(rest), 12))
			parts = append(parts, rest[:k])
			rest = rest[k:]
		}
		check(fmt.Sprintf("random split %d", n), parts)
	}
}

// TestSSEMarkTimes: an event is timed at the write that completed it —
// and a LF arriving later to finish a CRLF does not move it.
func TestSSEMarkTimes(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0), step: 10 * time.Millisecond}
	c := testCapture(t, true, clk)
	c.Write([]byte("data: a\n"))   // 20 ms (WriteHeader read the clock at 10)
	c.Write([]byte("\ndata: b"))   // 30 ms: event a ends here
	c.Write([]byte("\r\n\r"))      // 40 ms: event b ends at the CR
	c.Write([]byte("\ndata: c\n")) // 50 ms: the LF extends b, not re-times it
	ms := marksOf(t, c)
	if len(ms) != 3 {
		t.Fatalf("marks %+v", ms)
	}
	if ms[0].AtNS != int64(30*time.Millisecond) || ms[1].AtNS != int64(40*time.Millisecond) {
		t.Errorf("times %d, %d; want 30ms, 40ms", ms[0].AtNS, ms[1].AtNS)
	}
	if ms[1].End != int64(len("data: a\n\ndata: b\r\n\r\n")) {
		t.Errorf("event b ends at %d; the LF of its CRLF belongs to it", ms[1].End)
	}
}

func TestChunkMarksCoalesce(t *testing.T) {
	clk := &fakeClock{t: time.Unix(0, 0), step: 100 * time.Microsecond}
	c := testCapture(t, false, clk)
	for range 5 {
		c.Write([]byte("0123456789")) // 0.1 ms apart: one mark
	}
	clk.step = 5 * time.Millisecond
	c.Write([]byte("abc")) // 5 ms later: a new mark
	c.Write([]byte("def"))
	ms := marksOf(t, c)
	if got := ends(ms); got != "50,53,56" {
		t.Errorf("marks end at %s, want 50,53,56", got)
	}
}

func TestCaptureLimit(t *testing.T) {
	c := testCapture(t, false, &fakeClock{t: time.Unix(0, 0), step: time.Millisecond})
	c.r.maxSize = 100
	c.Write(make([]byte, 60))
	c.Write(make([]byte, 60))
	if c.err == nil || !strings.Contains(c.err.Error(), "limit of 100 bytes") {
		t.Errorf("over the limit: %v", c.err)
	}
}

func TestNilCapture(t *testing.T) {
	var c *Capture
	c.Request(ForwardedRequest{Method: "GET"})
	c.WriteHeader(200, http.Header{})
	c.Write([]byte("x"))
	c.Abort()
	if c.ID() != "" {
		t.Error("nil capture has an id")
	}
	if res := c.Finish(t.Context()); res.Outcome != OutcomeFailed {
		t.Errorf("nil Finish: %+v", res)
	}
}

func TestSpillBuffer(t *testing.T) {
	bud := &budget{max: 1 << 20}
	b := &spillBuffer{dir: t.TempDir(), threshold: 1000, budget: bud, encrypt: true}
	var want bytes.Buffer
	secret := []byte("CARD-4111111111111111-SECRET")
	for i := range 500 {
		p := append([]byte(strconv.Itoa(i)+":"), secret...)
		b.Write(p)
		want.Write(p)
	}
	if !b.Spilled() {
		t.Fatal("did not spill past the threshold")
	}
	if bud.used.Load() != 0 {
		t.Errorf("spilled buffer still holds %d bytes of budget", bud.used.Load())
	}
	// The file is unlinked and encrypted: nothing in the directory, and
	// the open file does not hold the plaintext.
	if ents, _ := osReadDir(b.dir); len(ents) != 0 {
		t.Errorf("spill dir holds %v; the file should be unlinked", ents)
	}
	b.flush()
	raw := make([]byte, b.n)
	b.f.ReadAt(raw, 0)
	if bytes.Contains(raw, secret) {
		t.Error("the spill file holds plaintext")
	}
	body, err := b.Body()
	if err != nil {
		t.Fatal(err)
	}
	var got bytes.Buffer
	got.ReadFrom(body.R)
	if !bytes.Equal(got.Bytes(), want.Bytes()) || body.Size != int64(want.Len()) {
		t.Error("spilled content does not read back")
	}
	b.Close()
}

func TestBudgetSpillsEarly(t *testing.T) {
	bud := &budget{max: 100}
	a := &spillBuffer{dir: t.TempDir(), threshold: 1000, budget: bud}
	b := &spillBuffer{dir: t.TempDir(), threshold: 1000, budget: bud}
	a.Write(make([]byte, 80))
	b.Write(make([]byte, 80)) // the budget is spent: b spills
	if a.Spilled() || !b.Spilled() {
		t.Errorf("spilled: a %v, b %v; want only b", a.Spilled(), b.Spilled())
	}
	a.Close()
	b.Close()
	if bud.used.Load() != 0 {
		t.Errorf("budget not returned: %d", bud.used.Load())
	}
}

func osReadDir(dir string) ([]string, error) {
	ents, err := os.ReadDir(dir)
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	return names, err
}

// TestBudgetGrain: small writes take the budget a grain at a time (not
// per write), a buffer never holds more than a grain it does not use,
// near the budget's end it takes exact amounts, and Close and spilling
// return everything.
func TestBudgetGrain(t *testing.T) {
	bud := &budget{max: 3*budgetGrain + 100}
	a := &spillBuffer{dir: t.TempDir(), threshold: 1 << 20, budget: bud}
	for range 100 {
		a.Write(make([]byte, 20))
	}
	if got := bud.used.Load(); got != budgetGrain {
		t.Fatalf("after 2000 bytes in 20-byte writes: budget used %d, want one grain (%d)", got, budgetGrain)
	}
	a.Write(make([]byte, 2*budgetGrain)) // more than a grain: exactly what is missing
	if got, want := bud.used.Load(), int64(2000+2*budgetGrain); got != want {
		t.Fatalf("after a large write: budget used %d, want %d", got, want)
	}
	b := &spillBuffer{dir: t.TempDir(), threshold: 1 << 20, budget: bud}
	// Less than a grain left: b takes exactly what it writes.
	b.Write(make([]byte, bud.max-bud.used.Load()))
	if b.Spilled() || bud.used.Load() != bud.max {
		t.Fatalf("b spilled %v, used %d of %d", b.Spilled(), bud.used.Load(), bud.max)
	}
	b.Write([]byte{1}) // budget spent: b spills and returns what it held
	if !b.Spilled() {
		t.Fatal("b did not spill with the budget spent")
	}
	if got, want := bud.used.Load(), int64(2000+2*budgetGrain); got != want {
		t.Fatalf("after b spilled: budget used %d, want %d (a's)", got, want)
	}
	a.Close()
	b.Close()
	if got := bud.used.Load(); got != 0 {
		t.Errorf("budget not returned: %d", got)
	}
}

// TestNewIDLayout: an id is IDPrefix of its creation time followed by 20
// random hex digits, so ids sort by creation time and IDPrefix bounds them.
func TestNewIDLayout(t *testing.T) {
	at := time.UnixMilli(1764565200123)
	r := &Recorder{now: func() time.Time { return at }}
	seen := map[string]bool{}
	for range 100 {
		id := r.newID()
		if len(id) != 33 || !strings.HasPrefix(id, IDPrefix(at)) {
			t.Fatalf("id %q: want 33 characters starting with %q", id, IDPrefix(at))
		}
		if err := validID(id); err != nil {
			t.Fatal(err)
		}
		if seen[id] {
			t.Fatalf("id %q made twice", id)
		}
		seen[id] = true
	}
	if a, b := IDPrefix(at), IDPrefix(at.Add(time.Millisecond)); a >= b {
		t.Fatalf("prefixes do not sort: %q then %q", a, b)
	}
}

// TestSpillChunkSizes: a buffer whose first write is small starts with a
// small chunk and continues in large ones; the bytes read back are the
// bytes written, across the chunk boundaries, whatever the write sizes.
func TestSpillChunkSizes(t *testing.T) {
	for _, sizes := range [][]int{{10}, {memChunkSmall}, {memChunkSmall + 1}, {100, memChunkSmall, 3 * memChunk}, {memChunkSmall - 1, 1, 1, memChunk}} {
		b := &spillBuffer{threshold: 1 << 30}
		var want []byte
		for i, n := range sizes {
			p := bytes.Repeat([]byte{byte('a' + i)}, n)
			if _, err := b.Write(p); err != nil {
				t.Fatal(err)
			}
			want = append(want, p...)
		}
		if first := cap(b.mem[0]); (sizes[0] <= memChunkSmall) != (first == memChunkSmall) {
			t.Errorf("sizes %v: first chunk of %d bytes", sizes, first)
		}
		for _, c := range b.mem[1:] {
			if cap(c) != memChunk {
				t.Errorf("sizes %v: a later chunk of %d bytes", sizes, cap(c))
			}
		}
		body, err := b.Body()
		if err != nil {
			t.Fatal(err)
		}
		var got bytes.Buffer
		got.ReadFrom(body.R)
		if !bytes.Equal(got.Bytes(), want) || body.Size != int64(len(want)) {
			t.Errorf("sizes %v: read back %d bytes (size %d), want %d", sizes, got.Len(), body.Size, len(want))
		}
		b.Close()
	}
}
