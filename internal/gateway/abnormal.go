package gateway

import (
	"mime"
	"net/http"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
)

// forward proxies the request upstream. When a response breaks off after
// it has started (the upstream connection drops, a masked text body ends
// abnormally, the caller goes away), httputil.ReverseProxy aborts the
// handler with http.ErrAbortHandler so the server cuts the connection
// and the caller sees an incomplete body. The request.completed entry is
// recorded first, with the outcome, before the abort goes on.
//
// A masked body that breaks off before the masker released its first
// byte has sent nothing yet, not even its status line (statusWriter
// holds it): the caller gets a JSON error instead (answerUnsent).
//
// A masked event stream does not abort: the masker ends it with an error
// event instead, and the outcome comes from its recorder (maskingOutcome).
func (g *Gateway) forward(sw *statusWriter, r *http.Request, c *call) {
	defer func() {
		v := recover()
		if v == nil {
			return
		}
		if v != http.ErrAbortHandler {
			// A bug on the request path: the server recovers it and cuts
			// the connection. The request still gets its terminal entry.
			g.log.Error("panic on the request path", "request_id", c.requestID, "panic", v)
			c.status = sw.status
			if c.status == 0 {
				c.status = http.StatusInternalServerError
			}
			if c.outcome == "" {
				c.outcome = audit.OutcomeRefused
				if sw.bytes > 0 {
					c.outcome = audit.OutcomeTruncated
				}
			}
			g.complete(r, c, sw)
		} else {
			if g.answerUnsent(sw, r, c) {
				return
			}
			c.status = sw.status
			if c.status == 0 {
				c.status = http.StatusOK
			}
			if c.outcome == "" {
				switch {
				case r.Context().Err() != nil:
					c.outcome = audit.OutcomeClientAborted
				case c.upstreamStalled():
					c.outcome = audit.OutcomeUpstreamTimeout
				case c.mask.rec != nil && c.mask.rec.Truncated() != "":
					c.outcome = audit.OutcomeTruncated
				default:
					c.outcome = audit.OutcomeUpstreamError
				}
			}
			g.complete(r, c, sw)
		}
		panic(v)
	}()
	g.proxy.ServeHTTP(sw, r)
}

// answerUnsent answers a response that broke off before anything of it
// reached the caller with a gateway error (502 masking_failed or
// upstream_unavailable, 504 upstream_timeout) in the JSON error shape,
// with X-Request-Id, instead of a dropped connection. The outcome stays
// what happened to the upstream answer (truncated, masking_failed, …);
// the status is the one the caller got. It reports false, changing
// nothing, once any byte has been sent or the caller has gone.
func (g *Gateway) answerUnsent(sw *statusWriter, r *http.Request, c *call) bool {
	if !sw.hold || !sw.unsent() || r.Context().Err() != nil {
		return false
	}
	code, msg := apierr.UpstreamUnavailable, "the upstream response broke off before any of it could be released; text held back for masking was withheld"
	switch {
	case c.mask.rec != nil && c.mask.rec.Failure() != "":
		code, msg = apierr.MaskingFailed, "the upstream response could not be masked safely and was withheld"
		if c.outcome == "" {
			c.outcome = audit.OutcomeMaskingFailed
		}
	case c.upstreamStalled():
		code, msg = apierr.UpstreamTimeout, "the upstream stopped sending before any of its answer could be released; text held back for masking was withheld"
		if c.outcome == "" {
			c.outcome = audit.OutcomeUpstreamTimeout
		}
	case c.mask.rec != nil && c.mask.rec.Truncated() != "":
		if c.outcome == "" {
			c.outcome = audit.OutcomeTruncated
		}
	default:
		if c.outcome == "" {
			c.outcome = audit.OutcomeUpstreamError
		}
	}
	g.log.Warn("upstream response broke off before its first byte; answered with an error", "request_id", c.requestID, "route", c.route.name, "outcome", c.outcome)
	h := sw.Header()
	for k := range h {
		delete(h, k)
	}
	sw.hold, sw.status = false, 0
	g.fail(sw, c, code, msg)
	return true
}

// isEventStream reports whether h declares a server-sent event stream,
// whose headers must reach the caller at once and whose abnormal end is
// an error event.
func isEventStream(h http.Header) bool {
	mt, _, _ := mime.ParseMediaType(h.Get("Content-Type"))
	return mt == "text/event-stream"
}
