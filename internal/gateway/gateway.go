package gateway

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"hash"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httputil"
	"strconv"
	"sync"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/recording"
)

// Options carry what the gateway needs besides the config.
type Options struct {
	// Logger receives structured logs; nil means slog.Default().
	Logger *slog.Logger
	// Registry receives the gateway's metrics; nil means a private one.
	Registry prometheus.Registerer
	// Transport overrides the upstream transport (tests); nil builds one
	// from the config.
	Transport http.RoundTripper
	// Now is the clock; nil means time.Now.
	Now func() time.Time

	// Auth verifies callers; nil means anonymous (allow_anonymous).
	Auth Authenticator
	// Asserter signs the identity assertion sent upstream; nil sends none.
	Asserter Asserter
	// Policy decides; nil allows every (authenticated) request.
	Policy PolicySource
	// Audit records admissions and completions; nil records nothing.
	Audit AuditLog
	// Masks provides the masking profiles policy decisions name.
	Masks Maskers
	// Approvals gates require_approval decisions; nil refuses them.
	Approvals ApprovalGate
	// Recorder records sessions whose rule (or recordings.default) asks
	// for it; nil with a level other than off refuses them in strict
	// mode.
	Recorder Recorder
	// AuditWriteProbe, when set, is what /readyz runs, after an audit
	// append failed, to learn whether the store can write again: it must
	// exercise the write path (creating, writing and syncing a file
	// beside the store) without recording anything in the log. Without
	// it the log's read probe (AuditProber) decides, which a disk that
	// reads but cannot write passes.
	AuditWriteProbe func(context.Context) error
}

// Gateway is the data-path handler: it normalises, routes, and forwards a
// request to its upstream, streaming the response back.
type Gateway struct {
	cfg     *config.Config
	log     *slog.Logger
	router  *router
	proxy   *httputil.ReverseProxy
	metrics *metrics
	now     func() time.Time
	maxBody int64

	bodyBudget     *byteBudget    // limits.max_inflight_body_bytes
	respBudget     *byteBudget    // limits.max_inflight_response_bytes
	bodyTimeout    time.Duration  // timeouts.request_body
	upstreamIdle   time.Duration  // timeouts.upstream_body_idle
	storeTimeout   time.Duration  // timeouts.store
	auditDeadline  sharedDeadline // timeouts.store for audit appends (deadline.go)
	auditHealth    storeHealth    // the last audit append failed (readyz)
	approvalHealth storeHealth    // the last approval store call failed (readyz)
	auditWrite     func(context.Context) error

	auth      Authenticator
	asserter  Asserter
	policy    PolicySource
	audit     AuditLog
	masks     Maskers
	approvals ApprovalGate
	recorder  Recorder

	completions chan struct{}      // semaphore for background completions
	pending     sync.WaitGroup     // background completions in flight
	compJobs    chan completionJob // to an idle completion worker

	callPool sync.Pool
}

// New builds a Gateway from a validated config.
func New(cfg *config.Config, opts Options) (*Gateway, error) {
	rt, err := newRouter(cfg.Routes)
	if err != nil {
		return nil, fmt.Errorf("gateway: routes: %w", err)
	}
	g := &Gateway{
		cfg:        cfg,
		log:        opts.Logger,
		router:     rt,
		now:        opts.Now,
		maxBody:    int64(cfg.Limits.MaxRequestBody),
		auth:       opts.Auth,
		asserter:   opts.Asserter,
		policy:     opts.Policy,
		audit:      opts.Audit,
		masks:      opts.Masks,
		approvals:  opts.Approvals,
		recorder:   opts.Recorder,
		auditWrite: opts.AuditWriteProbe,
	}
	if g.log == nil {
		g.log = slog.Default()
	}
	if g.now == nil {
		g.now = time.Now
	}
	g.setBounds(cfg)
	reg := opts.Registry
	if reg == nil {
		reg = prometheus.NewRegistry()
	}
	g.metrics = newMetrics(reg)
	tr := opts.Transport
	if tr == nil {
		if err := g.setupUpstreamTLS(cfg); err != nil {
			return nil, err
		}
		tr = routeTransport{def: NewTransport(cfg)}
	}
	g.proxy = &httputil.ReverseProxy{
		Rewrite:   g.rewrite,
		Transport: tr,
		// FlushInterval 0: ReverseProxy still flushes after every write for
		// text/event-stream and bodies of unknown length (it decides after
		// ModifyResponse, so a masked stream keeps streaming); plain JSON
		// answers are not flushed write by write (that cost 5-6% CPU).
		FlushInterval:  0,
		ModifyResponse: g.modifyResponse,
		ErrorHandler:   g.proxyError,
		ErrorLog:       slog.NewLogLogger(g.log.Handler(), slog.LevelDebug),
		BufferPool:     bufferPool{},
	}
	g.callPool.New = func() any { return new(call) }
	g.completions = make(chan struct{}, maxPendingCompletions)
	g.compJobs = make(chan completionJob)
	return g, nil
}

// NewTransport builds the upstream HTTP transport: a keep-alive pool sized
// by upstream_pool, bounded dial and response-header timeouts.
func NewTransport(cfg *config.Config) *http.Transport {
	d := &net.Dialer{Timeout: cfg.Timeouts.UpstreamDial, KeepAlive: 30 * time.Second}
	return &http.Transport{
		Proxy:                  nil, // never route inference traffic through an env proxy by accident
		DialContext:            d.DialContext,
		ForceAttemptHTTP2:      true,
		MaxIdleConns:           cfg.UpstreamPool.MaxIdlePerHost * 4,
		MaxIdleConnsPerHost:    cfg.UpstreamPool.MaxIdlePerHost,
		IdleConnTimeout:        cfg.UpstreamPool.IdleTimeout,
		TLSHandshakeTimeout:    cfg.Timeouts.UpstreamDial,
		ResponseHeaderTimeout:  cfg.Timeouts.UpstreamHeader,
		ExpectContinueTimeout:  time.Second,
		DisableCompression:     true, // pass encodings through; masking decodes what it must
		MaxResponseHeaderBytes: 1 << 20,
	}
}

// call is the per-request state shared by the handler and the proxy hooks.
type call struct {
	start         time.Time
	requestID     string
	clientReqID   bool
	respHeader    http.Header // the caller's response headers (X-Request-Id)
	route         *route
	path          string // normalised, escaped
	body          []byte
	bodyReserved  int64 // of the body budget, released at the end
	respReserved  int64 // of the response budget, released at the end
	upBody        *upstreamBody
	upstreamStart time.Time
	upstreamHdr   time.Duration // upstream time to response headers
	added         time.Duration // gateway time before the response headers
	status        int
	adm           admission
	approvalID    string
	grantID       string
	assertion     string // signed identity assertion for the upstream
	admittedSeq   int64
	mask          maskState
	out           *statusWriter // the caller's writer, while forwarding
	outcome       string        // audit.Outcome*, set where the end is known; "" = decided in complete
	rec           *recording.Capture
	recLevel      recording.Level // "" when nothing is recorded
	recErr        string          // why rec is nil although recLevel is set
	// admEntry is the request.admitted entry (Append copies it);
	// auditDecision is the decision its entries record (shared by them,
	// never changed).
	admEntry      audit.Entry
	auditDecision *audit.Decision
}

func (c *call) reset() { *c = call{} }

type callKey struct{}

func callFrom(ctx context.Context) *call {
	c, _ := ctx.Value(callKey{}).(*call)
	return c
}

// ServeHTTP implements the request path.
func (g *Gateway) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	c := g.callPool.Get().(*call)
	c.reset()
	defer g.callPool.Put(c)
	c.start = g.now()
	g.metrics.inflight.Inc()
	defer g.metrics.inflight.Dec()

	c.requestID, c.clientReqID = apierr.RequestID(r)
	c.respHeader = w.Header()
	c.respHeader.Set(apierr.HeaderRequestID, c.requestID)
	routeName := "-"
	defer func() {
		g.metrics.requests.WithLabelValues(routeName, strconv.Itoa(c.status)).Inc()
	}()

	p, err := normalizePath(r.URL.EscapedPath())
	if err != nil {
		closeUnread(w, r)
		g.fail(w, c, apierr.BadRequest, "ambiguous request path: "+err.Error())
		return
	}
	c.path = p
	c.route = g.router.match(r.Host, p)
	if c.route == nil {
		closeUnread(w, r)
		g.fail(w, c, apierr.NotFound, "no route for "+r.Method+" "+p)
		return
	}
	routeName = c.route.name
	if hasEncodedSlash(p) && !c.route.allowEncodedSlash {
		closeUnread(w, r)
		g.fail(w, c, apierr.BadRequest, "encoded slash (%2F) in path is not allowed on route "+c.route.name)
		return
	}

	// Identity comes from the headers alone: the body of a caller who is
	// not admitted is never read or buffered (a flood of unauthenticated
	// uploads costs no memory), and its connection is not kept.
	if !g.authenticate(w, r, c) {
		return
	}
	defer g.releaseBody(c)
	if code, msg := g.readBody(w, r, c); code != "" {
		g.failBody(w, r, c, code, msg)
		return
	}
	// Streams must not be truncated by the server closing the inbound body
	// while the response is written (golang/go#57786). The body has been
	// read in full by now, so this is defence in depth; it is enabled only
	// after a complete read, because with full duplex on, returning early
	// with an unread body races the server's own read of the connection.
	_ = http.NewResponseController(w).EnableFullDuplex()

	if !g.admit(w, r, c) {
		return
	}

	ctx := context.WithValue(r.Context(), callKey{}, c)
	sw := &statusWriter{ResponseWriter: w, rec: c.rec}
	if g.audit != nil {
		sw.hash = sha256.New()
	}
	c.out = sw
	g.forward(sw, r.WithContext(ctx), c)
	sw.commitHeader() // an empty masked body
	sw.recHeader()    // a stream that sent no body
	c.status = sw.status
	if c.status == 0 {
		c.status = http.StatusOK
	}
	g.complete(r, c, sw)
	if c.upstreamHdr > 0 {
		g.metrics.upstreamDur.WithLabelValues(routeName).Observe(c.upstreamHdr.Seconds())
	}
}

// rewrite builds the outbound request: the normalised path under the
// upstream, the body read once, X-Forwarded-* set by us only.
func (g *Gateway) rewrite(pr *httputil.ProxyRequest) {
	c := callFrom(pr.In.Context())
	rt := c.route
	out := pr.Out
	out.URL.Scheme = rt.upstream.Scheme
	out.URL.Host = rt.upstream.Host
	p := c.path
	if rt.stripPrefix {
		p = "/" + trimPrefixPath(p, rt.prefix)
	}
	rawPath := joinPath(rt.upstream.EscapedPath(), p)
	out.URL.Path = unescapePath(rawPath)
	out.URL.RawPath = rawPath
	out.Host = ""
	if c.body != nil {
		out.Body = io.NopCloser(bytes.NewReader(c.body))
		out.ContentLength = int64(len(c.body))
		out.GetBody = func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(c.body)), nil }
	} else {
		out.Body = nil
		out.ContentLength = 0
	}
	out.Header.Set("X-Request-Id", c.requestID)
	if g.auth != nil {
		// The assertion was signed in admit; the request id travels in
		// X-Request-Id, not in the (reusable) assertion.
		g.auth.PrepareUpstreamHeaders(out.Header, c.assertion)
	} else {
		identity.StripClientIdentityHeaders(out.Header, nil)
		identity.StripCredentials(out.Header)
	}
	setUpstreamCredential(out.Header, rt)
	if c.mask.m != nil {
		c.mask.m.RequestHeaderHint(out.Header)
	}
	pr.SetXForwarded()
	captureRequest(c, pr.In, out)
	c.upstreamStart = g.now()
}

func trimPrefixPath(p, prefix string) string {
	if len(p) >= len(prefix) {
		p = p[len(prefix):]
	}
	for len(p) > 0 && p[0] == '/' {
		p = p[1:]
	}
	return p
}

func joinPath(base, p string) string {
	if base == "" || base == "/" {
		return p
	}
	if base[len(base)-1] == '/' {
		return base + p[1:]
	}
	return base + p
}

// modifyResponse runs when the upstream's headers arrive, before anything
// is written to the caller.
func (g *Gateway) modifyResponse(resp *http.Response) error {
	c := callFrom(resp.Request.Context())
	now := g.now()
	c.upstreamHdr = now.Sub(c.upstreamStart)
	ub := g.wrapUpstreamBody(resp, c)
	c.upBody = ub
	if err := g.wrapMasking(resp, c); err != nil {
		return err
	}
	ub.stream()
	if c.out != nil {
		if isEventStream(resp.Header) {
			c.out.stream = true
		} else if c.mask.m != nil {
			c.out.hold = true
		}
	}
	added := g.now().Sub(c.start) - c.upstreamHdr
	c.added = added
	resp.Header.Set("Server-Timing", serverTiming(added))
	// Exactly one X-Request-Id, ours. The proxy *adds* the upstream's
	// headers to the ones the handler set, so ours is moved onto the
	// upstream's response (replacing any it sent) instead of being set
	// twice; a 1xx answer has also cleared the handler's headers by now.
	c.respHeader.Del(apierr.HeaderRequestID)
	resp.Header.Set(apierr.HeaderRequestID, c.requestID)
	g.metrics.gatewayAdded.WithLabelValues(c.route.name).Observe(added.Seconds())
	return nil
}

// proxyError maps transport failures to JSON errors: 504 for timeouts,
// 502 otherwise. Once the response has started there is nothing to send;
// the stream is cut and the failure logged.
func (g *Gateway) proxyError(w http.ResponseWriter, r *http.Request, err error) {
	c := callFrom(r.Context())
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		// The client went away; nothing to answer.
		c.status = 499
		c.outcome = audit.OutcomeClientAborted
		if sw, ok := w.(*statusWriter); ok {
			sw.status = 499
		}
		return
	}
	if errors.Is(err, errResponseBudget) {
		c.outcome = audit.OutcomeUpstreamError
		g.log.Warn("upstream response refused: response buffer budget full", "request_id", c.requestID, "route", c.route.name)
		g.busy(w, c, errResponseBudget.Error()+"; retry later")
		return
	}
	if errors.Is(err, mask.ErrBlocked) {
		c.outcome = audit.OutcomeMaskingFailed
		g.log.Warn("response blocked by masking", "request_id", c.requestID, "route", c.route.name, "err", err)
		msg := "the upstream response could not be masked safely and was withheld"
		var be *mask.BlockedError
		if errors.As(err, &be) {
			msg += ": " + be.Reason
		}
		g.fail(w, c, apierr.MaskingFailed, msg)
		return
	}
	var ne net.Error
	if errors.Is(err, context.DeadlineExceeded) || (errors.As(err, &ne) && ne.Timeout()) {
		c.outcome = audit.OutcomeUpstreamTimeout
		g.log.Warn("upstream timeout", "request_id", c.requestID, "route", c.route.name, "err", err)
		g.fail(w, c, apierr.UpstreamTimeout, "the upstream did not answer in time")
		return
	}
	c.outcome = audit.OutcomeUpstreamError
	g.log.Warn("upstream error", "request_id", c.requestID, "route", c.route.name, "err", err)
	g.fail(w, c, apierr.UpstreamUnavailable, "the upstream could not be reached or failed")
}

// fail writes a gateway-generated error with Server-Timing.
func (g *Gateway) fail(w http.ResponseWriter, c *call, code apierr.Code, msg string) {
	g.failWith(w, c, &apierr.Error{Code: code, Msg: msg})
}

// failWith is fail for an error that carries more than a message (a
// policy rule, an authentication challenge).
func (g *Gateway) failWith(w http.ResponseWriter, c *call, e *apierr.Error) {
	c.status = e.Code.Status()
	h := w.Header()
	h.Set(apierr.HeaderRequestID, c.requestID) // a 1xx may have cleared it
	h.Set("Server-Timing", serverTiming(g.now().Sub(c.start)-c.upstreamHdr))
	writeError(w, c.requestID, e)
}

func serverTiming(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	return "warden;dur=" + strconv.FormatFloat(float64(d.Microseconds())/1000, 'f', 3, 64)
}

// statusWriter remembers the status code and counts and hashes what the
// caller received; Unwrap keeps http.ResponseController working.
//
// For a masked body other than an event stream it holds the status line
// and headers back until the masker releases the first byte (hold): a
// body that breaks off before that can still be answered with a JSON
// error instead of a connection dropped with no status at all (the
// reverse proxy's early flush of the headers is held too).
type statusWriter struct {
	http.ResponseWriter
	status int
	bytes  int64
	hash   hash.Hash // of the bytes the caller received, when auditing
	// rec tees what the caller received into the session recording,
	// after each write (a memory copy; nil-safe).
	rec *recording.Capture
	// hold: WriteHeader is recorded but not passed on until the first
	// byte of the body (or the end of the handler, commitHeader).
	hold bool
	// sent: the status line has been passed to the ResponseWriter.
	sent bool
	// stream: the response is an event stream, which the reverse proxy
	// flushes after every write. When recording, Write flushes it
	// itself before teeing into the recording, and the status line is
	// recorded after that first flush: nothing of the recording comes
	// between the upstream's bytes and the client (decision 032).
	stream bool
	// recCode: the status line sent to the client, until it is recorded
	// (recHeader; for a stream, timed at its first flush, when the client
	// gets it).
	recCode int
	recDone bool
	// flushed: Write has flushed everything written so far.
	flushed bool
}

func (s *statusWriter) WriteHeader(code int) {
	if s.hold && code >= 200 {
		if s.status == 0 {
			s.status = code
		}
		return
	}
	if s.status == 0 && code >= 200 {
		s.status = code
	}
	if code >= 200 {
		s.sent = true
	}
	s.ResponseWriter.WriteHeader(code)
	s.noteHeader(code)
}

// noteHeader takes note of a status line sent to the client for the
// recording: recorded at once, or for a stream after its first flush.
func (s *statusWriter) noteHeader(code int) {
	if s.rec == nil || s.recCode != 0 || (code < 200 && code != http.StatusSwitchingProtocols) {
		return
	}
	s.recCode = code
	if !s.stream {
		s.recHeader()
	}
}

// recHeader records the status line noted by noteHeader, once.
func (s *statusWriter) recHeader() {
	if s.recCode == 0 || s.recDone {
		return
	}
	s.recDone = true
	s.rec.WriteHeader(s.recCode, s.Header())
}

// commitHeader passes a held status line on, once.
func (s *statusWriter) commitHeader() {
	if !s.hold {
		return
	}
	s.hold = false
	if s.status != 0 {
		s.WriteHeader(s.status)
	}
}

// unsent reports whether nothing of the response, not even its status
// line, has reached the ResponseWriter: a gateway error can still be
// answered instead.
func (s *statusWriter) unsent() bool { return !s.sent && s.bytes == 0 }

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.hold {
		if len(b) == 0 {
			return 0, nil
		}
		s.commitHeader()
	}
	implicit := s.status == 0
	if implicit {
		s.status = http.StatusOK
	}
	n, err := s.ResponseWriter.Write(b)
	s.flushed = false
	s.bytes += int64(n)
	if s.hash != nil {
		s.hash.Write(b[:n])
	}
	if implicit {
		s.sent = true
		s.noteHeader(http.StatusOK)
	}
	if s.rec != nil {
		if s.stream && n > 0 && err == nil {
			// The proxy flushes after this returns; flushing first puts
			// the recording after the bytes reach the client, and the
			// proxy's flush then has nothing left to do (flushed). A
			// failed flush is left for the proxy's to report.
			s.flushed = http.NewResponseController(s.ResponseWriter).Flush() == nil
		}
		s.recHeader()
		s.rec.Write(b[:n])
	}
	return n, err
}

// FlushError flushes what has been written; while the status line is
// held it does nothing (the reverse proxy flushes streamed headers at
// once, before the masker has released anything).
func (s *statusWriter) FlushError() error {
	if s.hold {
		return nil
	}
	if s.flushed {
		// Write flushed these bytes already (a recorded stream).
		s.flushed = false
		return nil
	}
	return http.NewResponseController(s.ResponseWriter).Flush()
}

func (s *statusWriter) Unwrap() http.ResponseWriter { return s.ResponseWriter }

// bufferPool recycles the 32 KiB copy buffers of the reverse proxy.
type bufferPool struct{}

var copyBufs = sync.Pool{New: func() any { b := make([]byte, 32<<10); return &b }}

func (bufferPool) Get() []byte  { return *(copyBufs.Get().(*[]byte)) }
func (bufferPool) Put(b []byte) { copyBufs.Put(&b) }
