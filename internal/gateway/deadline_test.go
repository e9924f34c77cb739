package gateway

import (
	"context"
	"errors"
	"testing"
	"time"
)

// TestSharedDeadlineBounds: every context ends within the timeout of the
// call that received it and no earlier than a slice before it, calls
// within a slice share one context, and the context ends by itself.
func TestSharedDeadlineBounds(t *testing.T) {
	for _, timeout := range []time.Duration{320 * time.Millisecond, 10 * time.Second} {
		d := sharedDeadline{timeout: timeout}
		seen := map[context.Context]bool{}
		end := time.Now().Add(timeout / deadlineSlices * 3)
		for time.Now().Before(end) {
			before := time.Now()
			ctx := d.context()
			after := time.Now()
			dl, ok := ctx.Deadline()
			if !ok {
				t.Fatal("no deadline")
			}
			if dl.After(after.Add(timeout)) || dl.Before(before.Add(timeout-timeout/deadlineSlices)) {
				t.Fatalf("timeout %s: deadline %s after the call, want in [%s, %s]", timeout,
					dl.Sub(before), timeout-timeout/deadlineSlices, timeout)
			}
			if ctx.Err() != nil {
				t.Fatalf("handed out an ended context: %v", ctx.Err())
			}
			seen[ctx] = true
			time.Sleep(time.Millisecond)
		}
		if n := len(seen); n < 2 || n > 5 {
			t.Errorf("timeout %s: %d contexts over three slices, want 2..5", timeout, n)
		}
	}
	d := sharedDeadline{timeout: 50 * time.Millisecond}
	ctx := d.context()
	select {
	case <-ctx.Done():
		if !errors.Is(ctx.Err(), context.DeadlineExceeded) {
			t.Fatalf("ended with %v", ctx.Err())
		}
	case <-time.After(5 * time.Second):
		t.Fatal("the shared context never ended")
	}
}

// BenchmarkStoreDeadline: the store deadline of one audit append, as
// before decision 049 (WithoutCancel + WithTimeout, waited on, cancelled)
// and shared; -benchmem shows the allocations.
func BenchmarkStoreDeadline(b *testing.B) {
	parent := context.WithValue(context.Background(), struct{}{}, 1)
	b.Run("with-timeout", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			ctx, cancel := context.WithTimeout(context.WithoutCancel(parent), 10*time.Second)
			_ = ctx.Done() // the append's select waits on it
			cancel()
		}
	})
	b.Run("shared", func(b *testing.B) {
		d := sharedDeadline{timeout: 10 * time.Second}
		b.ReportAllocs()
		for b.Loop() {
			_ = d.context().Done()
		}
	})
}
