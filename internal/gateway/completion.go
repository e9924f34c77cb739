package gateway

import (
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
)

// Completions are appended off the client's path (the response has been
// sent when the request.completed entry is built), by completion
// workers: long-lived goroutines that take one job after another.
//
// A goroutine per completion (as before decision 037) started on a 2 KiB
// stack and grew it twice while encoding the entry (runtime.newstack and
// copystack were ~6 µs a request at 64 connections); a worker keeps its
// grown stack from job to job. When no worker is idle, the handler starts
// one; a worker idle for completionIdle ends, so the workers follow the
// load (about the completions waiting for a group commit at once).

// completionIdle is how long a completion worker waits for its next job
// before it ends.
const completionIdle = 5 * time.Second

// completionJob is one request's end: its request.completed entry (nil
// without an audit log) and the recording to store first.
type completionJob struct {
	e        *audit.Entry
	rec      *recording.Capture
	recLevel recording.Level
	recErr   string
}

// completeInBackground hands j to an idle completion worker, or to a new
// one. The semaphore bounds the jobs in flight: when it is full the
// handler waits (backpressure instead of unbounded memory).
func (g *Gateway) completeInBackground(j completionJob) {
	g.completions <- struct{}{}
	g.pending.Add(1)
	select {
	case g.compJobs <- j:
	default:
		go g.completionWorker(j)
	}
}

// completionWorker runs j, then the jobs handed to it, until it has been
// idle for completionIdle (to twice that: the timer is not reset at every
// job, which cost a timer-heap update per completion, but when it fires
// after a period with jobs; decision 049).
func (g *Gateway) completionWorker(j completionJob) {
	idle := time.NewTimer(completionIdle)
	defer idle.Stop()
	for {
		if !g.finishCall(j) {
			g.completionDone()
		}
		worked := true
	wait:
		for {
			select {
			case j = <-g.compJobs:
				break wait
			case <-idle.C:
				if !worked {
					return
				}
				worked = false
				idle.Reset(completionIdle)
			}
		}
	}
}

// completionDone releases a completion's place (the semaphore and
// Drain's count) once its entry is appended or failed.
func (g *Gateway) completionDone() {
	<-g.completions
	g.pending.Done()
}

// finishCall stores the recording, then appends the request.completed
// entry with the recording's summary. It reports true when the entry was
// handed to an AsyncAuditLog: its callback then calls completionDone;
// else the caller does.
func (g *Gateway) finishCall(j completionJob) bool {
	// The recording is stored first: its digest goes into the entry.
	sum := g.finishRecording(j.rec, j.recLevel, j.recErr)
	e := j.e
	if e == nil {
		return false
	}
	if sum != nil {
		if e.Details == nil {
			e.Details = map[string]any{}
		}
		e.Details[DetailRecording] = sum
	}
	// Not retried: an append that failed may still have committed, and
	// a second one would give the request two terminal entries. A
	// request whose completion is lost stays open until the next start
	// records it as request.abandoned.
	ctx := g.auditDeadline.context()
	if al, ok := g.audit.(AsyncAuditLog); ok {
		// The worker goes on to the next job instead of parking until
		// the entry's flush wakes it: the log calls back.
		id := e.RequestID
		err := al.AppendAsync(ctx, e, func(_ audit.Ref, err error) {
			g.completed(id, err)
			g.completionDone()
		})
		if err != nil {
			g.completed(id, err)
			return false
		}
		return true
	}
	_, err := g.audit.Append(ctx, e)
	g.completed(e.RequestID, err)
	return false
}

// completed notes the result of appending request id's
// request.completed entry.
func (g *Gateway) completed(id string, err error) {
	g.auditHealth.note(err)
	if err != nil {
		g.metrics.auditCompleteFailed.Inc()
		g.log.Error("audit completion failed; the request stays open until the next start records it as abandoned", "request_id", id, "err", err)
	}
}
