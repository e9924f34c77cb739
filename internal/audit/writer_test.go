package audit_test

import (
	"context"
	"log/slog"
	"sync"
	"sync/atomic"
	"testing"
	"time"

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

// TestGatherDuringFlush: while a batch is being flushed, the writer does
// not commit the appends arriving meanwhile as small batches; it gathers
// them until the flush returns, or commits them during the flush only
// once a batch holds 64 (decision 036). Every append is answered, and the
// log verifies.
func TestGatherDuringFlush(t *testing.T) {
	for _, tc := range []struct {
		name          string
		writers, each int
		batchMax      int
	}{
		{"moderate", 16, 20, 0},
		{"many writers", 200, 3, 0},
		{"batch_max below the gather size", 50, 4, 8},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			cfg := audit.Config{}
			cfg.SetDefaults()
			cfg.Resolve(dir)
			if tc.batchMax > 0 {
				cfg.BatchMax = tc.batchMax
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
			defer inner.Close()
			st := &slowFlushStore{Store: inner}
			l, err := audit.Open(ctx, st, cfg, signer, ver, audit.WithLogger(slog.New(slog.DiscardHandler)))
			if err != nil {
				t.Fatal(err)
			}
			var wg sync.WaitGroup
			for w := range tc.writers {
				wg.Add(1)
				go func() {
					defer wg.Done()
					for i := range tc.each {
						if _, err := l.Append(ctx, request(w*tc.each+i)); err != nil {
							t.Error(err)
							return
						}
					}
				}()
			}
			wg.Wait()
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
			if _, err := audit.Verify(ctx, inner, ver, audit.VerifyOptions{SingleWriter: true}); err != nil {
				t.Fatal(err)
			}
		})
	}
}
