package export

import (
	"context"
	"sync"
	"testing"
	"time"
)

// checkpointLagSink settles every batch, but takes delay over a batch
// that holds a checkpoint.
type checkpointLagSink struct {
	delay time.Duration
	mu    sync.Mutex
	got   []Event
}

func (s *checkpointLagSink) Send(ctx context.Context, batch []Event) (Ack, error) {
	for i := range batch {
		if batch[i].IsCheckpoint() {
			select {
			case <-time.After(s.delay):
			case <-ctx.Done():
				return Ack{}, ctx.Err()
			}
			break
		}
	}
	s.mu.Lock()
	s.got = append(s.got, batch...)
	s.mu.Unlock()
	return Ack{Settled: len(batch)}, nil
}

func (s *checkpointLagSink) Close() error { return nil }

func (s *checkpointLagSink) events() []Event {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Event(nil), s.got...)
}

// TestDrainWaitsForFinalCheckpoint: Drain (a clean stop) returns only
// once every sink has the checkpoint signing the last entries, not as
// soon as the entries are delivered. Here the entries fill one batch and
// the checkpoint goes in the next, which the sink is slow to take; a
// drain that stopped at the entries left the receiver with entries no
// checkpoint signed (TestExportPostgresTakeover saw that under load).
func TestDrainWaitsForFinalCheckpoint(t *testing.T) {
	l := newMemLog(t)
	l.fill(t, 10, 10) // e0..e9, then the checkpoint of size 10
	sink := &checkpointLagSink{delay: 300 * time.Millisecond}
	tg := target(t.TempDir(), "siem", sink)
	tg.BatchMax = 10 // the checkpoint goes in a batch of its own
	svc, err := NewService(l, ServiceOptions{
		Options: Options{Origin: "warden-audit", ProductVersion: "test", Logger: quietLogger()},
		Targets: func() ([]Target, error) { return []Target{tg}, nil },
		Sinks:   []string{"siem"},
	})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- svc.Run(context.Background()) }()
	// Wait until the entries are delivered (the checkpoint is then on
	// its slow way), then drain.
	waitFor(t, "the entries delivered", func() bool { return len(sink.events()) >= 10 })
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	svc.Drain(ctx)
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := sink.events()
	if len(evs) != 11 || !evs[10].IsCheckpoint() || evs[10].Seq != 10 {
		var last Event
		if len(evs) > 0 {
			last = evs[len(evs)-1]
		}
		t.Fatalf("after the drain the sink has %d events, the last %s; want the 10 entries and the checkpoint of size 10", len(evs), last.UID)
	}
}
