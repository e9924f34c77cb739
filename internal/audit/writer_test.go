package audit_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// slowFlushStore is a SQLite store whose flushes take a few milliseconds
// more, and which records the size of every batch committed while a
// flush is running.
type slowFlushStore struct {
	*sqlite.Store
	flushing atomic.Bool
	mu       sync.Mutex
	during   []int // batch sizes committed during a flush
	commits  int
}

func (s *slowFlushStore) Flush(ctx context.Context) error {
	s.flushing.Store(true)
	defer s.flushing.Store(false)
	time.Sleep(3 * time.Millisecond)
	return s.Store.Flush(ctx)
}

func (s *slowFlushStore) AppendNoFlush(ctx context.Context, b audit.Batch) error {
	s.mu.Lock()
	s.commits++
	if s.flushing.Load() {
		s.during = append(s.during, len(b.Records))
	}
	s.mu.Unlock()
	return s.Store.AppendNoFlush(ctx, b)
}

// Append is AppendNoFlush then Flush, through the two above.
func (s *slowFlushStore) Append(ctx context.Context, b audit.Batch) error {
	if err := s.AppendNoFlush(ctx, b); err != nil {
		return err
	}
	return s.Flush(ctx)
}

// openSlowFlush opens a Log over a slowFlushStore in a new directory
// (batchMax overrides batch_max when > 0); the store closes at cleanup.
func openSlowFlush(t *testing.T, batchMax int) (*audit.Log, *slowFlushStore, audit.Config, note.Verifier) {
	t.Helper()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(t.TempDir())
	if batchMax > 0 {
		cfg.BatchMax = batchMax
	}
	signer, ver, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "test-audit")
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	inner, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { inner.Close() })
	st := &slowFlushStore{Store: inner}
	l, err := audit.Open(ctx, st, cfg, signer, ver, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		t.Fatal(err)
	}
	return l, st, cfg, ver
}

// appendConcurrently has writers goroutines append each requests apiece
// and waits for them.
func appendConcurrently(t *testing.T, l *audit.Log, writers, each int) {
	t.Helper()
	ctx := context.Background()
	var wg sync.WaitGroup
	for w := range writers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range each {
				if _, err := l.Append(ctx, request(w*each+i)); err != nil {
					t.Error(err)
					return
				}
			}
		}()
	}
	wg.Wait()
}

// TestGatherDuringFlush: at moderate rates (flushes of fewer entries
// than the gather size on average), while a batch is being flushed the
// writer does not commit the appends arriving meanwhile as small
// batches; it gathers them until the flush returns, or commits them
// during the flush only once a batch holds 64 (decision 036). Every
// append is answered, and the log verifies. The writers are at most the
// gather size, so no flush covers more and the policy stays on.
func TestGatherDuringFlush(t *testing.T) {
	for _, tc := range []struct {
		name          string
		writers, each int
		batchMax      int
	}{
		{"moderate", 16, 20, 0},
		{"as many writers as the gather size", 64, 8, 0},
		{"batch_max below the gather size", 8, 25, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ctx := context.Background()
			l, st, cfg, ver := openSlowFlush(t, tc.batchMax)
			appendConcurrently(t, l, tc.writers, tc.each)
			if err := l.Close(ctx); err != nil {
				t.Fatal(err)
			}
			gather := min(64, cfg.BatchMax)
			st.mu.Lock()
			for _, n := range st.during {
				if n < gather {
					t.Errorf("a batch of %d committed during a flush (fewer than %d)", n, gather)
				}
			}
			t.Logf("%d appends in %d commits, %d of them during a flush", tc.writers*tc.each, st.commits, len(st.during))
			st.mu.Unlock()
			if st := l.Stats(); st.Gathers != st.Batches {
				t.Errorf("%d of %d batches gathered: the policy went off with flushes under the gather size", st.Gathers, st.Batches)
			}
			if _, err := audit.Verify(ctx, st.Store, ver, audit.VerifyOptions{SingleWriter: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestGatherOffWhenSaturated: once the flushes cover more entries than
// the gather size on average (many writers, slow flushes), the writer
// stops gathering and flushing batches itself: it commits during
// flushes again, as decision 026's pipeline does, which is where
// gathering cost CPU (decision 040). Every append is answered and the
// log verifies.
func TestGatherOffWhenSaturated(t *testing.T) {
	ctx := context.Background()
	l, st, _, ver := openSlowFlush(t, 0)
	const writers, each = 256, 30
	appendConcurrently(t, l, writers, each)
	s := l.Stats()
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	t.Logf("%d appends: %d batches, %d gathered, %d flushes, %d by the writer", s.Appends, s.Batches, s.Gathers, s.Flushes, s.OwnFlushes)
	// The average starts at 0 and needs a few flushes of ~256 entries to
	// pass 64; after that no batch is gathered.
	if s.Gathers*2 > s.Batches {
		t.Errorf("%d of %d batches gathered with %d writers and 3 ms flushes", s.Gathers, s.Batches, writers)
	}
	if s.OwnFlushes*2 > s.Flushes {
		t.Errorf("%d of %d flushes by the writer with %d writers", s.OwnFlushes, s.Flushes, writers)
	}
	if _, err := audit.Verify(ctx, st.Store, ver, audit.VerifyOptions{SingleWriter: true}); err != nil {
		t.Fatal(err)
	}
}
