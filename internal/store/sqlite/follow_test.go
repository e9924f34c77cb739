package sqlite_test

import (
	"context"
	"fmt"
	"io"
	"iter"
	"log/slog"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/audit/storetest"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

var quiet = slog.New(slog.NewTextHandler(io.Discard, nil))

// openLog opens (or reopens) a Log on the SQLite file in dir.
func openLog(t testing.TB, dir string) (*audit.Log, *sqlite.Store) {
	t.Helper()
	signer, verifier, err := audit.LoadOrCreateKeys(filepath.Join(dir, "audit.signer"), "test-follow")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(context.Background(), filepath.Join(dir, "audit.db"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := audit.Config{CheckpointEvery: 1000, CheckpointInterval: 100 * time.Millisecond, CheckpointFile: filepath.Join(dir, "audit.checkpoint"), BatchMax: 256, WriteTimeout: 30 * time.Second}
	l, err := audit.Open(context.Background(), st, cfg, signer, verifier, audit.WithLogger(quiet), audit.WithInstance("follow"))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	return l, st
}

// appendConcurrently appends n request entries (request ids tag-0 …
// tag-(n-1)) from writers goroutines.
func appendConcurrently(l *audit.Log, n, writers int, tag string) error {
	var wg sync.WaitGroup
	errc := make(chan error, writers)
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := w; i < n; i += writers {
				_, err := l.Append(context.Background(), &audit.Entry{
					Kind:      audit.KindRequestAdmitted,
					RequestID: fmt.Sprintf("%s-%d", tag, i),
					Principal: &identity.Principal{Issuer: "https://idp", Subject: fmt.Sprintf("user-%d", i%17)},
					Route:     "chat",
				})
				if err != nil {
					errc <- err
					return
				}
			}
		}()
	}
	wg.Wait()
	close(errc)
	return <-errc
}

func requestIDs(tag string, n int) map[string]bool {
	m := make(map[string]bool, n)
	for i := range n {
		m[fmt.Sprintf("%s-%d", tag, i)] = true
	}
	return m
}

func byRequestID(e *audit.Entry) string { return e.RequestID }
func byID(e *audit.Entry) string        { return e.ID }

// TestFollowConcurrentLoad (issue 14): two followers running during a
// concurrent load of 10k appends from 64 writers — the log's own (woken by
// commits) and one over the store alone (another process's view, polling)
// — each yield every entry exactly once, in sequence order, and agree;
// after the log is closed and reopened, a follower from a given sequence
// number yields exactly what they saw from there.
func TestFollowConcurrentLoad(t *testing.T) {
	dir := t.TempDir()
	l, st := openLog(t, dir)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()

	const n = 10000
	want := requestIDs("load", n)
	type result struct {
		got []*audit.Entry
		err error
	}
	done := make(chan result, 2)
	for _, it := range []iter.Seq2[*audit.Entry, error]{
		l.Follow(ctx, 0, audit.FollowOptions{}),
		audit.Follow(ctx, st, 0, audit.FollowOptions{Poll: 20 * time.Millisecond}),
	} {
		go func() {
			got, err := storetest.FollowUntil(it, 0, want, byRequestID)
			done <- result{got, err}
		}()
	}
	if err := appendConcurrently(l, n, 64, "load"); err != nil {
		t.Fatal(err)
	}
	a, b := <-done, <-done
	for _, r := range []result{a, b} {
		if r.err != nil {
			t.Fatal(r.err)
		}
	}
	if len(a.got) != len(b.got) {
		t.Fatalf("followers yielded %d and %d entries", len(a.got), len(b.got))
	}
	for i := range a.got {
		if a.got[i].ID != b.got[i].ID {
			t.Fatalf("seq %d: followers disagree (%s, %s)", i, a.got[i].ID, b.got[i].ID)
		}
	}
	first := a.got

	// Restart: close the log, reopen it, resume from seq 5000.
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()
	l, st = openLog(t, dir)
	defer st.Close()
	defer l.Close(context.Background())
	const from = 5000
	rest := map[string]bool{}
	for _, e := range first[from:] {
		rest[e.ID] = true
	}
	again, err := storetest.FollowUntil(l.Follow(ctx, from, audit.FollowOptions{}), from, rest, byID)
	if err != nil {
		t.Fatal(err)
	}
	for i, e := range again {
		if e.ID != first[from+i].ID {
			t.Fatalf("after restart seq %d is %s, was %s", e.Seq, e.ID, first[from+i].ID)
		}
	}
}
