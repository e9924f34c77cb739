package export

import (
	"context"
	"fmt"
	"time"
)

// Sink delivers batches of events to one receiver.
//
// Contract:
//   - Send delivers batch in order. It returns a nil error only when
//     every event is settled: durably accepted by the receiver (as far as
//     its protocol can tell: publish ack, HTTP 2xx, indexer ack, written
//     and synced) or refused for good.
//   - Ack.Settled counts the settled events from the start of the batch,
//     also on error: the exporter re-sends only batch[Settled:]. A sink
//     that cannot tell leaves it 0 and the whole batch is re-sent
//     (receivers de-duplicate on Event.UID).
//   - Ack.Rejected lists settled events the receiver refused for good
//     (malformed for it, too large): they go to the dead-letter file.
//     Anything transient (unreachable, 429, 5xx, timeouts, bad
//     credentials) is an error, never a rejection, so nothing is
//     dropped because a receiver was down or misconfigured.
//   - Send is called by one goroutine at a time; ctx bounds it. It must
//     not keep the batch slice after it returns (the exporter reuses it
//     for the next batch); the events themselves may be kept.
//   - Close releases connections; it does not lose settled events.
type Sink interface {
	Send(ctx context.Context, batch []Event) (Ack, error)
	Close() error
}

// Ack is a sink's answer to Send.
type Ack struct {
	// Settled is the number of events, from the start of the batch, that
	// are delivered or rejected.
	Settled int
	// Rejected are the refused events among the settled ones.
	Rejected []Rejection
}

// Rejection is one event a receiver refused for good.
type Rejection struct {
	// Index is the event's position in the batch.
	Index int
	// Reason is what the receiver said (no secrets).
	Reason string
}

// allSettled is the Ack of a fully delivered batch.
func allSettled(n int) Ack { return Ack{Settled: n} }

// SinkError is a transient delivery error with a short, secret-free
// description of the receiver's answer.
type SinkError struct {
	Sink string
	Msg  string
	Err  error
	// RetryAfter is the receiver's hint (e.g. HTTP Retry-After); the
	// exporter waits at least this long (capped by its maximum backoff).
	RetryAfter time.Duration
}

func (e *SinkError) Error() string {
	if e.Err != nil {
		return fmt.Sprintf("export: %s: %s: %v", e.Sink, e.Msg, e.Err)
	}
	return fmt.Sprintf("export: %s: %s", e.Sink, e.Msg)
}

func (e *SinkError) Unwrap() error { return e.Err }
