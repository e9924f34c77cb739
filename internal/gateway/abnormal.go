package gateway

import (
	"net/http"

	"github.com/wardenhq/warden/internal/audit"
)

// forward proxies the request upstream. When a response breaks off after
// it has started (the upstream connection drops, a masked text body ends
// abnormally, the caller goes away), httputil.ReverseProxy aborts the
// handler with http.ErrAbortHandler so the server cuts the connection
// and the caller sees an incomplete body. The request.completed entry is
// recorded first, with the outcome, before the abort goes on.
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
