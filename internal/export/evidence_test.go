package export

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// evidenceLog keeps what Record was given.
type evidenceLog struct {
	mu      sync.Mutex
	kinds   []string
	details []map[string]any
	err     error
}

func (l *evidenceLog) Record(_ context.Context, kind string, details map[string]any) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.err != nil {
		return l.err
	}
	l.kinds, l.details = append(l.kinds, kind), append(l.details, details)
	return nil
}

// TestDeadLetterEvidence: each refused event becomes an
// export.dead_lettered entry with sink, uid, seq, kind and a bounded
// reason, never the event; a refused dead-letter entry gets none (no
// loop); when the log refuses the entry the file still has the event.
func TestDeadLetterEvidence(t *testing.T) {
	cases := []struct {
		name    string
		evs     []Event
		reasons []string
		logErr  error
		want    int // entries recorded
	}{
		{"one refused event", []Event{{UID: "o/7", Seq: 7, Kind: audit.KindRequestCompleted, JSON: []byte(`{"secret":"body"}`)}}, []string{"400 bad event"}, nil, 1},
		{"a refused dead-letter entry is not recorded again",
			[]Event{{UID: "o/8", Seq: 8, Kind: audit.KindExportDeadLettered, JSON: []byte(`{}`)}, {UID: "o/9", Seq: 9, Kind: audit.KindRequestDenied, JSON: []byte(`{}`)}},
			[]string{"refused", "refused"}, nil, 1},
		{"long reason bounded", []Event{{UID: "o/10", Seq: 10, Kind: audit.KindRequestCompleted, JSON: []byte(`{}`)}}, []string{strings.Repeat("x", 5000)}, nil, 1},
		{"log unavailable", []Event{{UID: "o/11", Seq: 11, Kind: audit.KindRequestCompleted, JSON: []byte(`{}`)}}, []string{"refused"}, errors.New("audit closed"), 0},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ev := &evidenceLog{err: c.logErr}
			d := &deadLetter{path: filepath.Join(t.TempDir(), "dl.jsonl"), ev: ev}
			defer d.close()
			err := d.write("hec", t0, c.evs, c.reasons)
			var eerr *evidenceError
			if c.logErr != nil {
				if !errors.As(err, &eerr) {
					t.Fatalf("write: %v, want an evidence error", err)
				}
			} else if err != nil {
				t.Fatal(err)
			}
			b, _ := os.ReadFile(d.path)
			if n := strings.Count(string(b), "\n"); n != len(c.evs) {
				t.Fatalf("dead-letter file has %d lines, want %d", n, len(c.evs))
			}
			if len(ev.kinds) != c.want {
				t.Fatalf("%d entries recorded, want %d: %v", len(ev.kinds), c.want, ev.details)
			}
			for i, d := range ev.details {
				if ev.kinds[i] != audit.KindExportDeadLettered || d["sink"] != "hec" || d["uid"] == "" || d["kind"] == audit.KindExportDeadLettered {
					t.Errorf("entry %d: %s %v", i, ev.kinds[i], d)
				}
				if _, ok := d["event"]; ok {
					t.Errorf("entry %d carries the event", i)
				}
				if r, _ := d["reason"].(string); len(r) > maxReasonLen+len("…") {
					t.Errorf("reason of %d bytes", len(r))
				}
			}
		})
	}
}
