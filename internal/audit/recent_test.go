package audit_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/framelog/framelogtest"
)

// startup_verify: recent verifies only the recent entries before serving
// and the whole log in the background.
func TestStartupVerifyRecent(t *testing.T) {
	recent := func(c *audit.Config) {
		c.CheckpointEvery = 10
		c.StartupVerify = "recent"
		c.StartupVerifyWindow = 15
	}
	t.Run("old entry changed: found in the background", func(t *testing.T) {
		e := tamperEnv(t) // 50 entries, checkpoints 1, 11, 21, 31, 41, 50
		recent(&e.cfg)
		editRecord(t, e, 5, flipReq)
		if err := e.open(t); err != nil {
			t.Fatalf("Open (recent) refused a change outside the window: %v", err)
		}
		rep, _ := e.log.StartReport()
		if rep.From != 31 {
			t.Fatalf("verified from %d, want 31 (largest checkpoint <= 50-15)", rep.From)
		}
		deadline := time.Now().Add(30 * time.Second)
		for {
			got, err := e.log.Search(context.Background(), audit.Query{Kind: audit.KindVerifyFailed})
			if err != nil {
				t.Fatal(err)
			}
			if len(got) == 1 {
				if msg, _ := got[0].Details["divergence"].(string); !strings.Contains(msg, "entry 5: leaf hash mismatch") {
					t.Fatalf("recorded divergence %q", msg)
				}
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("background verification recorded nothing")
			}
			time.Sleep(20 * time.Millisecond)
		}
	})
	t.Run("recent entry changed: refused at start", func(t *testing.T) {
		e := tamperEnv(t)
		recent(&e.cfg)
		editRecord(t, e, 40, allowToDeny)
		var d *audit.Divergence
		if err := e.open(t); !errors.As(err, &d) || d.Seq != 40 {
			t.Fatalf("Open (recent) = %v, want a divergence at entry 40", err)
		}
	})
	t.Run("hashes under the anchor changed: refused at start", func(t *testing.T) {
		e := tamperEnv(t)
		recent(&e.cfg)
		editFrames(t, e, func(f *framelogtest.File) error {
			b, _ := f.Record(5)
			flipReq(b)
			return f.Rehash(0, f.Size()) // consistent hashes, but not what checkpoint 31 signed
		})
		var d *audit.Divergence
		if err := e.open(t); !errors.As(err, &d) || d.CheckpointSize != 31 || !strings.Contains(d.Msg, "does not match the stored tree hashes") {
			t.Fatalf("Open (recent) = %v, want a divergence at checkpoint 31", err)
		}
	})
	t.Run("clean log: background verification passes", func(t *testing.T) {
		e := tamperEnv(t)
		recent(&e.cfg)
		if err := e.open(t); err != nil {
			t.Fatal(err)
		}
		appendN(t, e.log, 5)
		if err := e.reopen(t); err != nil {
			t.Fatal(err)
		}
		got, _ := e.log.Search(context.Background(), audit.Query{Kind: audit.KindVerifyFailed})
		if len(got) != 0 {
			t.Fatalf("verification failure recorded on a clean log: %v", got[0].Details)
		}
	})
}
