package admin

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"strconv"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
)

// maxBody bounds admin request bodies.
const maxBody = 64 << 10

// writeJSON answers with v as JSON (no HTML escaping, so entries keep
// their canonical bytes), never cached.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return err
	}
	h := w.Header()
	h.Set("Content-Type", "application/json")
	h.Set("Content-Length", strconv.Itoa(buf.Len()))
	h.Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes()) // the client went away: nothing to do
	return nil
}

// decodeBody reads a strict JSON object into v: at most maxBody bytes,
// no unknown fields, no trailing data. An empty body is allowed when
// optional.
func decodeBody(r *http.Request, v any, optional bool) error {
	b, err := io.ReadAll(http.MaxBytesReader(nil, r.Body, maxBody))
	if err != nil {
		if mbe := (*http.MaxBytesError)(nil); errors.As(err, &mbe) {
			return apierr.Errorf(apierr.TooLarge, "request body exceeds %d bytes", maxBody)
		}
		return apierr.Errorf(apierr.BadRequest, "request body could not be read")
	}
	if len(bytes.TrimSpace(b)) == 0 {
		if optional {
			return nil
		}
		return apierr.New(apierr.BadRequest, "a JSON body is required")
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return apierr.Errorf(apierr.BadRequest, "request body: %s", jsonProblem(err))
	}
	if dec.More() {
		return apierr.New(apierr.BadRequest, "request body: trailing data after the JSON object")
	}
	return nil
}

// jsonProblem describes a JSON decoding error without echoing the input
// at length.
func jsonProblem(err error) string {
	var se *json.SyntaxError
	var te *json.UnmarshalTypeError
	switch {
	case errors.As(err, &se):
		return "malformed JSON at byte " + strconv.FormatInt(se.Offset, 10)
	case errors.As(err, &te):
		return "field " + strconv.Quote(te.Field) + " must be " + te.Type.String()
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "truncated JSON"
	}
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	return msg
}

// query reads and checks query parameters, remembering the first error.
type query struct {
	r   *http.Request
	err error
}

func (q *query) str(name string) string { return q.r.URL.Query().Get(name) }

// int returns a non-negative integer parameter, def when absent.
func (q *query) int(name string, def int64) int64 {
	s := q.str(name)
	if s == "" || q.err != nil {
		return def
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		q.err = apierr.Errorf(apierr.BadRequest, "%s must be a non-negative integer", name)
	}
	return n
}

// limit returns the limit parameter: 1..max, def when absent.
func (q *query) limit(def, max int) int {
	s := q.str("limit")
	if s == "" || q.err != nil {
		return def
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > max {
		q.err = apierr.Errorf(apierr.BadRequest, "limit must be 1..%d", max)
	}
	return n
}

// time returns an RFC 3339 time parameter, zero when absent.
func (q *query) time(name string) time.Time {
	s := q.str(name)
	if s == "" || q.err != nil {
		return time.Time{}
	}
	t, err := time.Parse(time.RFC3339Nano, s)
	if err != nil {
		q.err = apierr.Errorf(apierr.BadRequest, "%s must be an RFC 3339 time such as 2026-01-02T15:04:05Z", name)
	}
	return t
}

// bool returns a boolean parameter: true, 1, false, 0 or absent.
func (q *query) bool(name string) bool {
	switch q.str(name) {
	case "", "false", "0":
		return false
	case "true", "1":
		return true
	}
	if q.err == nil {
		q.err = apierr.Errorf(apierr.BadRequest, "%s must be true or false", name)
	}
	return false
}

// requestID is the request id of r (set by the router).
func requestID(r *http.Request) string { return apierr.RequestIDFrom(r.Context()) }
