package audit_test

import (
	"context"
	"sync"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// TestAppendAsync: every entry handed over is answered exactly once,
// with the Ref Append would give, and is durable (the store reads it
// back after a reopen); Close waits for the answers; a store that fails
// answers with the error; a closed log refuses without calling back.
func TestAppendAsync(t *testing.T) {
	e := newEnv(t, nil)
	ctx := context.Background()
	const n = 300
	var mu sync.Mutex
	calls := map[string]int{}
	seqs := map[int64]bool{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			err := e.log.AppendAsync(ctx, request(i), func(ref audit.Ref, err error) {
				mu.Lock()
				defer mu.Unlock()
				if err != nil {
					t.Errorf("entry %d: %v", i, err)
				}
				calls[ref.ID]++
				seqs[ref.Seq] = true
			})
			if err != nil {
				t.Errorf("AppendAsync %d: %v", i, err)
			}
		}()
	}
	wg.Wait()
	if err := e.log.Close(ctx); err != nil { // waits for the answers
		t.Fatal(err)
	}
	e.log = nil
	mu.Lock()
	if len(calls) != n || len(seqs) != n {
		t.Fatalf("%d ids and %d sequence numbers answered, want %d", len(calls), len(seqs), n)
	}
	for id, c := range calls {
		if c != 1 {
			t.Fatalf("entry %s answered %d times", id, c)
		}
	}
	mu.Unlock()
	if err := e.reopen(t); err != nil {
		t.Fatal(err)
	}
	// gateway.started, n entries, gateway.stopped
	if rep, _ := e.log.StartReport(); rep.Size != n+2 {
		t.Fatalf("store holds %d entries, want %d", rep.Size, n+2)
	}

	// A store that fails: the callback gets the error.
	e.st.Close()
	errs := make(chan error, 1)
	if err := e.log.AppendAsync(ctx, request(n), func(_ audit.Ref, err error) { errs <- err }); err != nil {
		t.Fatal(err)
	}
	if err := <-errs; err == nil {
		t.Fatal("an entry on a closed store was answered without an error")
	}
	e.log.Close(ctx) // cannot record the stop: the store is down
	// A closed log refuses, and never calls back.
	if err := e.log.AppendAsync(ctx, request(n+1), func(audit.Ref, error) { t.Error("called back after Close") }); err == nil {
		t.Fatal("AppendAsync after Close succeeded")
	}
	e.log, e.st = nil, nil
}
