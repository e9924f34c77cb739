package audit_test

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
)

func TestEntryCanonical(t *testing.T) {
	e := request(3)
	e.V, e.ID, e.Time = 1, "id-1", time.Date(2026, 1, 2, 3, 4, 5, 600, time.FixedZone("CET", 3600))
	e.Params["html"] = "<b>&</b>"
	e.Details = map[string]any{"z": 1, "a": []any{"x", map[string]any{"k2": true, "k1": nil}}}
	e.Upstream = 1500 * time.Millisecond
	b, err := audit.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	for _, want := range []string{
		`"time":"2026-01-02T02:04:05.0000006Z"`, // UTC, ns, trailing zeros trimmed
		`"html":"<b>&</b>"`,                     // no HTML escaping
		`"upstream_ns":1500000000`,
		`{"k1":null,"k2":true}`, // nested keys sorted
	} {
		if !strings.Contains(s, want) {
			t.Errorf("canonical form lacks %s:\n%s", want, s)
		}
	}
	if !strings.HasPrefix(s, `{"decision":`) || !strings.HasSuffix(s, `"v":1}`) || strings.ContainsAny(s, " \n") {
		t.Errorf("canonical form is not sorted and compact:\n%s", s)
	}
	back, err := audit.ParseEntry(7, b)
	if err != nil {
		t.Fatal(err)
	}
	if back.Seq != 7 || back.Upstream != e.Upstream || back.Principal.Subject != "alice" {
		t.Fatalf("round trip: %+v", back)
	}
	again, _ := audit.Marshal(back)
	if !bytes.Equal(again, b) {
		t.Fatalf("re-encoding differs:\n%s\n%s", again, b)
	}
}

func TestParseEntryStrict(t *testing.T) {
	e := request(1)
	e.V, e.ID, e.Time = 1, "id-1", time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	good, _ := audit.Marshal(e)
	tests := []struct {
		name string
		b    []byte
	}{
		{"whitespace", bytes.Replace(good, []byte(`{"decision"`), []byte(`{ "decision"`), 1)},
		{"keys reordered", bytes.Replace(good, []byte(`"action":"allow","policy_version":"abc"`), []byte(`"policy_version":"abc","action":"allow"`), 1)},
		{"unknown field", bytes.Replace(good, []byte(`"v":1}`), []byte(`"v":1,"x":1}`), 1)},
		{"version 2", bytes.Replace(good, []byte(`"v":1}`), []byte(`"v":2}`), 1)},
		{"trailing data", append(append([]byte(nil), good...), []byte(`{}`)...)},
		{"escaped html", bytes.Replace(good, []byte(`/v1/chat`), []byte(`\u002fv1/chat`), 1)},
		{"time not UTC", bytes.Replace(good, []byte(`03:04:05Z`), []byte(`04:04:05+01:00`), 1)},
		{"not json", []byte("garbage")},
		{"too large", append(good[:len(good)-1], append(bytes.Repeat([]byte(" "), audit.MaxEntrySize), '}')...)},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if bytes.Equal(tc.b, good) {
				t.Fatal("test bug: no change")
			}
			if _, err := audit.ParseEntry(0, tc.b); err == nil {
				t.Fatalf("ParseEntry accepted %s", tc.b)
			}
		})
	}
	if _, err := audit.ParseEntry(0, good); err != nil {
		t.Fatal(err)
	}
}

func FuzzParseEntry(f *testing.F) {
	e := request(1)
	e.V, e.ID = 1, "x"
	good, _ := audit.Marshal(e)
	f.Add(good)
	f.Add([]byte(`{"id":"a","kind":"k","time":"2026-01-01T00:00:00Z","v":1}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		e, err := audit.ParseEntry(0, b)
		if err != nil {
			return
		}
		again, err := audit.Marshal(e)
		if err != nil || !bytes.Equal(again, b) {
			t.Fatalf("accepted %q but it re-encodes to %q (%v)", b, again, err)
		}
	})
}

func TestCheckpointMangled(t *testing.T) {
	s, err := note.NewSigner(exampleSignerKey)
	if err != nil {
		t.Fatal(err)
	}
	_, v, _ := loadExampleVerifier(t)
	c, err := audit.SignCheckpoint(s, 42, tlog.RecordHash([]byte("x")), time.Unix(1, 0))
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.OpenCheckpoint(c.Note, v)
	if err != nil || got.Size != 42 || got.Hash != c.Hash || !got.Time.Equal(time.Unix(1, 0)) {
		t.Fatalf("OpenCheckpoint = %+v, %v", got, err)
	}
	// Every one-byte change of the signed note is refused.
	for i := range c.Note {
		m := append([]byte(nil), c.Note...)
		m[i] ^= 0x01
		if _, err := audit.OpenCheckpoint(m, v); err == nil {
			t.Fatalf("mangled byte %d accepted: %q", i, m)
		}
	}
}

func loadExampleVerifier(t *testing.T) (note.Signer, note.Verifier, error) {
	t.Helper()
	v, err := note.NewVerifier("warden-audit+cb506839+AepKbGPinFIKvvVQexMuxfmVR3auvr57kkIe6mkURtIs")
	if err != nil {
		t.Fatal(err)
	}
	return nil, v, nil
}

func FuzzParseCheckpoint(f *testing.F) {
	f.Add([]byte(audit.FormatCheckpoint("warden-audit", 5, tlog.Hash{}, time.Unix(0, 5))))
	f.Add([]byte("o\n1\nAAAA\ntime x\n"))
	f.Fuzz(func(t *testing.T, b []byte) {
		origin, size, hash, at, err := audit.ParseCheckpoint(b)
		if err != nil {
			return
		}
		if again := audit.FormatCheckpoint(origin, size, hash, at); !bytes.Equal(again, b) {
			t.Fatalf("accepted %q but it formats as %q", b, again)
		}
	})
}
