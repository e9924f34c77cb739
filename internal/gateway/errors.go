package gateway

import (
	"net/http"

	"github.com/wardenhq/warden/internal/apierr"
)

// The data path answers errors with the codes of internal/apierr, whose
// table is the one place that fixes their statuses and wire types. These
// are the wire types (the JSON "type") clients of the gateway switch on.
const (
	errBadRequest = string(apierr.BadRequest)
	errNotFound   = string(apierr.NotFound)
	errTooLarge   = string(apierr.TooLarge)
	errUpstream   = string(apierr.UpstreamUnavailable)
	errTimeout    = string(apierr.UpstreamTimeout)
	errAudit      = string(apierr.AuditUnavailable)
)

// errorBody is the JSON shape of every error Warden itself produces:
// {"error":{"type":"...","message":"...","request_id":"..."}}.
type errorBody = apierr.Body

type errorDetail = apierr.Detail

// writeError writes a JSON error. Callers must not pass secrets in e.Msg.
func writeError(w http.ResponseWriter, requestID string, e *apierr.Error) {
	apierr.Write(w, requestID, e)
}

// wellFormedRequestID reports whether a client-supplied X-Request-Id is
// kept (see apierr.RequestID).
func wellFormedRequestID(s string) bool { return apierr.WellFormedRequestID(s) }
