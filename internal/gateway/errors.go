package gateway

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Error types in JSON error bodies. Clients can switch on them; the
// message is for humans.
const (
	errBadRequest      = "bad_request"
	errUnauthenticated = "unauthenticated"
	errForbidden       = "forbidden"
	errNotFound        = "not_found"
	errTooLarge        = "request_too_large"
	errUpstream        = "upstream_unavailable"
	errTimeout         = "upstream_timeout"
	errAudit           = "audit_unavailable"
	errInternal        = "internal_error"
	errApproval        = "approval_required"
	errMasking         = "masking_failed"
)

// errorBody is the JSON shape of every error Warden itself produces:
// {"error":{"type":"...","message":"...","request_id":"..."}}.
type errorBody struct {
	Error errorDetail `json:"error"`
}

type errorDetail struct {
	Type      string `json:"type"`
	Message   string `json:"message"`
	RequestID string `json:"request_id,omitempty"`
	Rule      string `json:"rule,omitempty"`
}

// writeError writes a JSON error. Callers must not pass secrets in msg.
func writeError(w http.ResponseWriter, status int, typ, msg, requestID string) {
	writeErrorDetail(w, status, errorDetail{Type: typ, Message: msg, RequestID: requestID})
}

func writeErrorDetail(w http.ResponseWriter, status int, d errorDetail) {
	b, _ := json.Marshal(errorBody{Error: d})
	b = append(b, '\n')
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(len(b)))
	h.Set("Cache-Control", "no-store")
	h.Del("Content-Encoding")
	w.WriteHeader(status)
	_, _ = w.Write(b)
}
