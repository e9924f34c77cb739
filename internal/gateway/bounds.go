package gateway

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
)

// Resource bounds of the request path (docs/configuration.md, "Resource
// bounds"): how many body bytes may be buffered across all requests, how
// long a body may take to arrive, how long the caller may wait on an
// upstream body that stalls.

// defaultStoreTimeout bounds store calls when the config sets none (a
// config that was not defaulted, in tests).
const defaultStoreTimeout = 10 * time.Second

// setBounds takes the resource bounds from the config.
func (g *Gateway) setBounds(cfg *config.Config) {
	g.bodyBudget = newByteBudget(int64(cfg.Limits.MaxInflightBodyBytes))
	g.respBudget = newByteBudget(int64(cfg.Limits.MaxInflightResponseBytes))
	g.bodyTimeout = cfg.Timeouts.RequestBody
	g.upstreamIdle = cfg.Timeouts.UpstreamBodyIdle
	g.storeTimeout = cfg.Timeouts.Store
	if g.storeTimeout <= 0 {
		g.storeTimeout = defaultStoreTimeout
	}
	g.auditDeadline.timeout = g.storeTimeout
}

// retryAfterBusy is the Retry-After of a 503 for a full buffer budget.
const retryAfterBusy = "1"

// byteBudget is a shared cap on buffered bytes. The zero value (or nil)
// admits everything.
type byteBudget struct {
	limit int64
	used  atomic.Int64
}

func newByteBudget(limit int64) *byteBudget { return &byteBudget{limit: limit} }

// acquire reserves n bytes; false when that would exceed the limit.
func (b *byteBudget) acquire(n int64) bool {
	if b == nil || b.limit <= 0 || n <= 0 {
		return true
	}
	for {
		u := b.used.Load()
		if u+n > b.limit {
			return false
		}
		if b.used.CompareAndSwap(u, u+n) {
			return true
		}
	}
}

// release returns n bytes acquired earlier.
func (b *byteBudget) release(n int64) {
	if b == nil || b.limit <= 0 || n <= 0 {
		return
	}
	b.used.Add(-n)
}

// errBodyBudget: the request body budget (limits.max_inflight_body_bytes)
// is used up.
var errBodyBudget = errors.New("the gateway is buffering its maximum of request bodies")

// errResponseBudget: the response budget (limits.max_inflight_response_bytes)
// is used up.
var errResponseBudget = errors.New("the gateway is buffering its maximum of upstream responses")

// budgetReader reserves what it reads from the body budget, for bodies of
// unknown length.
type budgetReader struct {
	r        io.Reader
	b        *byteBudget
	reserved *int64
}

func (br budgetReader) Read(p []byte) (int, error) {
	n, err := br.r.Read(p)
	if n > 0 {
		if !br.b.acquire(int64(n)) {
			return 0, errBodyBudget
		}
		*br.reserved += int64(n)
	}
	return n, err
}

// readBody reads the request body once, bounded by the size limit, the
// shared body budget and timeouts.request_body. It is called only for an
// authenticated caller. It returns an error code and message on failure.
func (g *Gateway) readBody(w http.ResponseWriter, r *http.Request, c *call) (apierr.Code, string) {
	if r.ContentLength > g.maxBody {
		return apierr.TooLarge, fmt.Sprintf("request body of %d bytes exceeds the limit of %d bytes", r.ContentLength, g.maxBody)
	}
	if r.Body == nil || r.Body == http.NoBody || r.ContentLength == 0 {
		return "", ""
	}
	var src io.Reader = io.LimitReader(r.Body, g.maxBody+1)
	if r.ContentLength > 0 {
		// Reserve the whole declared length before reading a byte: a
		// client that announces and stalls holds budget, not memory, and
		// the body timeout frees it.
		if !g.bodyBudget.acquire(r.ContentLength) {
			return apierr.TemporarilyUnavailable, errBodyBudget.Error() + "; retry later"
		}
		c.bodyReserved = r.ContentLength
	} else {
		src = budgetReader{r: src, b: g.bodyBudget, reserved: &c.bodyReserved}
	}
	rc := http.NewResponseController(w)
	if g.bodyTimeout > 0 {
		_ = rc.SetReadDeadline(time.Now().Add(g.bodyTimeout))
	}
	buf := bytes.NewBuffer(make([]byte, 0, bodyCap(r.ContentLength)))
	n, err := buf.ReadFrom(src)
	if g.bodyTimeout > 0 {
		// Cleared at once: the server reads the connection in the
		// background afterwards to notice a client that goes away, and
		// an expired deadline there would cancel the request.
		_ = rc.SetReadDeadline(time.Time{})
	}
	if err != nil {
		var mbe *http.MaxBytesError
		var ne net.Error
		switch {
		case errors.As(err, &mbe):
			return apierr.TooLarge, "request body too large"
		case errors.Is(err, errBodyBudget):
			return apierr.TemporarilyUnavailable, errBodyBudget.Error() + "; retry later"
		case errors.Is(err, os.ErrDeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()):
			return apierr.RequestTimeout, "the request body did not arrive within " + g.bodyTimeout.String()
		}
		return apierr.BadRequest, "could not read request body: " + err.Error()
	}
	if n > g.maxBody {
		return apierr.TooLarge, fmt.Sprintf("request body exceeds the limit of %d bytes", g.maxBody)
	}
	c.body = buf.Bytes()
	return "", ""
}

// failBody answers a request whose body could not be read. The rest of
// the body is not read, so the connection is not reused.
func (g *Gateway) failBody(w http.ResponseWriter, r *http.Request, c *call, code apierr.Code, msg string) {
	closeUnread(w, r)
	// The caller is known by now: its refusal is evidence too.
	g.recordRefusal(r, c, audit.KindRequestRefused, code.Status(), map[string]any{"reason": code.Type()})
	if code == apierr.TemporarilyUnavailable {
		g.busy(w, c, msg)
		return
	}
	g.fail(w, c, code, msg)
}

// closeUnread ends the HTTP/1 connection of a request whose body is
// left unread: after the handler, the server would otherwise wait to
// drain a small body from a client that may never send it. The expired
// read deadline makes that drain fail at once; the answer is written
// before it. (An HTTP/2 stream ends on its own; Connection: close there
// would shut down every other stream of the connection.)
func closeUnread(w http.ResponseWriter, r *http.Request) {
	if r.ProtoMajor != 1 || r.ContentLength == 0 {
		return
	}
	w.Header().Set("Connection", "close")
	_ = http.NewResponseController(w).SetReadDeadline(time.Now())
}

// releaseBody returns the call's body reservation.
func (g *Gateway) releaseBody(c *call) {
	g.bodyBudget.release(c.bodyReserved)
	c.bodyReserved = 0
	g.respBudget.release(c.respReserved)
	c.respReserved = 0
}

func bodyCap(cl int64) int64 {
	if cl > 0 && cl < 1<<20 {
		return cl
	}
	return 4096
}

// errUpstreamIdle: the upstream body stalled for timeouts.upstream_body_idle.
// It is a net.Error with Timeout() true, so proxyError answers 504.
type errUpstreamIdle struct{ d time.Duration }

func (e errUpstreamIdle) Error() string {
	return "the upstream body stalled for " + e.d.String()
}
func (errUpstreamIdle) Timeout() bool   { return true }
func (errUpstreamIdle) Temporary() bool { return false }

// upstreamBody bounds how the upstream's response body is read: while it
// is buffered (masked JSON) every byte is reserved from the response
// budget and the whole read must end within idle (the caller receives
// nothing meanwhile); once streaming, idle bounds the gap between reads.
// A stall closes the upstream body, which unblocks the pending read.
type upstreamBody struct {
	rc        io.ReadCloser
	idle      time.Duration
	budget    *byteBudget
	reserved  *int64 // read by the handler goroutine only
	timer     *time.Timer
	fired     atomic.Bool
	streaming atomic.Bool
	closed    atomic.Bool
	closeOnce sync.Once
}

func (g *Gateway) wrapUpstreamBody(resp *http.Response, c *call) *upstreamBody {
	if resp.Body == nil || resp.Body == http.NoBody || resp.StatusCode == http.StatusSwitchingProtocols {
		// An upgraded connection must stay the transport's writable
		// body; the proxy copies it both ways itself.
		return nil
	}
	u := &upstreamBody{rc: resp.Body, idle: g.upstreamIdle, budget: g.respBudget, reserved: &c.respReserved}
	if u.idle > 0 {
		u.timer = time.AfterFunc(u.idle, func() {
			u.fired.Store(true)
			u.close()
		})
	}
	resp.Body = u
	return u
}

// stream switches to streaming: bytes pass through without being held,
// so they are no longer reserved, and idle restarts with every read.
func (u *upstreamBody) stream() {
	if u == nil {
		return
	}
	u.streaming.Store(true)
	if u.timer != nil && !u.fired.Load() && !u.closed.Load() {
		u.timer.Reset(u.idle)
	}
}

func (u *upstreamBody) Read(p []byte) (int, error) {
	n, err := u.rc.Read(p)
	if n > 0 {
		if !u.streaming.Load() {
			if !u.budget.acquire(int64(n)) {
				return 0, errResponseBudget
			}
			*u.reserved += int64(n)
		} else if u.timer != nil && !u.fired.Load() {
			u.timer.Reset(u.idle)
		}
	}
	if err != nil && err != io.EOF && u.fired.Load() {
		return n, errUpstreamIdle{u.idle}
	}
	return n, err
}

func (u *upstreamBody) close() { u.closeOnce.Do(func() { _ = u.rc.Close() }) }

func (u *upstreamBody) Close() error {
	u.closed.Store(true)
	if u.timer != nil {
		u.timer.Stop()
	}
	u.close()
	return nil
}

// upstreamStalled reports whether the call's upstream body was cut for
// stalling (timeouts.upstream_body_idle).
func (c *call) upstreamStalled() bool { return c.upBody != nil && c.upBody.fired.Load() }

// busy answers 503 temporarily_unavailable with Retry-After.
func (g *Gateway) busy(w http.ResponseWriter, c *call, msg string) {
	w.Header().Set("Retry-After", retryAfterBusy)
	g.fail(w, c, apierr.TemporarilyUnavailable, msg)
}
