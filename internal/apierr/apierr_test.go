package apierr

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"
	"time"
)

func TestTable(t *testing.T) {
	seen := map[string]Code{}
	for _, c := range Codes() {
		st := c.Status()
		if st < 400 || st > 599 {
			t.Errorf("%s: status %d is not an error status", c, st)
		}
		if c.Type() == "" {
			t.Errorf("%s: empty wire type", c)
		}
		// A wire type shared by two codes is a data-path legacy; only the
		// two documented ones may exist.
		if o, ok := seen[c.Type()]; ok {
			pair := fmt.Sprint(o, "+", c)
			if pair != "approval_required+approval_unavailable" && pair != "masking_failed+masking_misconfigured" &&
				pair != "masking_misconfigured+masking_failed" {
				t.Errorf("wire type %q shared by %s", c.Type(), pair)
			}
		}
		seen[c.Type()] = c
	}
	if Code("bogus").Status() != 500 || Code("bogus").Type() != "internal_error" || Code("bogus").Known() {
		t.Error("an unknown code must answer as internal_error")
	}
	// The data path's statuses, as clients have always seen them.
	for c, st := range map[Code]int{
		BadRequest: 400, InvalidRequest: 400, Unauthenticated: 401, InvalidToken: 401, Forbidden: 403,
		ApprovalRequired: 403, NotFound: 404, TooLarge: 413, MaskingMisconfigured: 500, UpstreamUnavailable: 502,
		MaskingFailed: 502, AuditUnavailable: 503, ApprovalUnavailable: 503, TemporarilyUnavailable: 503,
		NotReady: 503, UpstreamTimeout: 504,
	} {
		if c.Status() != st {
			t.Errorf("%s: status %d, want %d", c, c.Status(), st)
		}
	}
}

func TestWrite(t *testing.T) {
	cause := errors.New("pq: password authentication failed for user secret-user")
	tests := []struct {
		name      string
		err       error
		status    int
		typ, msg  string
		challenge string
	}{
		{"coded", New(NotFound, "no approval request x"), 404, "not_found", "no approval request x", ""},
		{"wrapped coded", fmt.Errorf("admin: %w", Errorf(Conflict, "request %s is %s", "a", "denied")), 409, "conflict", "request a is denied", ""},
		{"cause is never written", Wrap(Unavailable, "audit store unavailable", cause), 503, "unavailable", "audit store unavailable", ""},
		{"plain error is internal", cause, 500, "internal_error", "internal error", ""},
		{"internal code hides its message", New(Internal, "stack trace here"), 500, "internal_error", "internal error", ""},
		{"unknown code", &Error{Code: "weird", Msg: "x"}, 500, "internal_error", "internal error", ""},
		{"legacy wire type", New(ApprovalUnavailable, "the approval store is unavailable"), 503, "approval_required", "the approval store is unavailable", ""},
		{"challenge", &Error{Code: InvalidToken, Msg: "token expired", Challenge: `Bearer realm="warden", error="invalid_token"`}, 401, "invalid_token", "token expired", `Bearer realm="warden", error="invalid_token"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			w := httptest.NewRecorder()
			w.Header().Set("Content-Encoding", "gzip")
			Write(w, "req-0123456789", tt.err)
			if w.Code != tt.status {
				t.Fatalf("status %d, want %d", w.Code, tt.status)
			}
			if strings.Contains(w.Body.String(), "secret-user") || strings.Contains(w.Body.String(), "stack trace") {
				t.Fatalf("internal detail leaked: %s", w.Body)
			}
			var b Body
			dec := json.NewDecoder(w.Body)
			dec.DisallowUnknownFields()
			if err := dec.Decode(&b); err != nil {
				t.Fatal(err)
			}
			if b.Error.Type != tt.typ || b.Error.Message != tt.msg || b.Error.RequestID != "req-0123456789" {
				t.Fatalf("body %+v", b)
			}
			h := w.Header()
			if h.Get("Content-Type") != "application/json" || h.Get("Cache-Control") != "no-store" || h.Get("Content-Encoding") != "" {
				t.Fatalf("headers %v", h)
			}
			if h.Get("WWW-Authenticate") != tt.challenge {
				t.Fatalf("challenge %q", h.Get("WWW-Authenticate"))
			}
		})
	}
}

func TestSentinels(t *testing.T) {
	notFound := &Error{Code: NotFound}
	err := fmt.Errorf("store: %w", Errorf(NotFound, "no request %s", "x"))
	if !errors.Is(err, notFound) || errors.Is(err, &Error{Code: Conflict}) {
		t.Fatal("sentinel matching by code")
	}
	if errors.Is(New(NotFound, "a"), New(NotFound, "b")) {
		t.Fatal("an Error with a message is not a sentinel")
	}
	if CodeOf(err) != NotFound || CodeOf(errors.New("x")) != Internal || CodeOf(nil) != "" {
		t.Fatal("CodeOf")
	}
	if !errors.Is(Wrap(Unavailable, "x", http.ErrServerClosed), http.ErrServerClosed) {
		t.Fatal("Unwrap")
	}
}

func TestRequestID(t *testing.T) {
	tests := []struct {
		in   string
		keep bool
	}{
		{"abc-123.XYZ:9_q", true},
		{"short", false},
		{strings.Repeat("a", 128), true},
		{strings.Repeat("a", 129), false},
		{"with space 123", false},
		{"line\nbreak-1234", false},
		{"quote\"1234567", false},
		{"", false},
	}
	for _, tt := range tests {
		var got string
		h := WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			got = RequestIDFrom(r.Context())
			WriteRequest(w, r, New(BadRequest, "x"))
		}))
		r := httptest.NewRequest("GET", "/", nil)
		if tt.in != "" {
			r.Header.Set("X-Request-Id", tt.in)
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		if (got == tt.in) != tt.keep || got == "" || w.Header().Get("X-Request-Id") != got {
			t.Errorf("%q: id %q (header %q), keep %v", tt.in, got, w.Header().Get("X-Request-Id"), tt.keep)
		}
		if !strings.Contains(w.Body.String(), `"request_id":"`+got+`"`) {
			t.Errorf("%q: body %s", tt.in, w.Body)
		}
	}
	// Nested: the outer id is kept.
	var inner string
	h := WithRequestID(WithRequestID(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { inner = RequestIDFrom(r.Context()) })))
	w := httptest.NewRecorder()
	h.ServeHTTP(w, httptest.NewRequest("GET", "/", nil))
	if inner != w.Header().Get("X-Request-Id") {
		t.Fatalf("nested id %q vs header %q", inner, w.Header().Get("X-Request-Id"))
	}
}

func FuzzWellFormedRequestID(f *testing.F) {
	f.Add("abc-123.XYZ:9_q")
	f.Add("\x00\xff")
	f.Fuzz(func(t *testing.T, s string) {
		if !WellFormedRequestID(s) {
			return
		}
		// A kept id is safe in a header, a log line and JSON unescaped.
		b, _ := json.Marshal(s)
		if string(b) != `"`+s+`"` || strings.ContainsAny(s, " \r\n\t\"\\<>&") {
			t.Fatalf("kept %q", s)
		}
	})
}

// TestWriteRetryAfter: RetryAfter becomes Retry-After in whole seconds,
// rounded up; without it there is no header.
func TestWriteRetryAfter(t *testing.T) {
	for _, tc := range []struct {
		d    time.Duration
		want string
	}{{5 * time.Second, "5"}, {1500 * time.Millisecond, "2"}, {time.Millisecond, "1"}, {0, ""}} {
		w := httptest.NewRecorder()
		Write(w, "rid", &Error{Code: TemporarilyUnavailable, Msg: "x", RetryAfter: tc.d})
		if got := w.Header().Get("Retry-After"); got != tc.want || w.Code != http.StatusServiceUnavailable {
			t.Fatalf("%v: Retry-After %q status %d, want %q", tc.d, got, w.Code, tc.want)
		}
	}
}

// TestReadmeErrorTable: README's error table lists every status and wire
// type Warden answers with, so the table cannot fall behind the code.
func TestReadmeErrorTable(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	rows := map[string]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 {
			continue
		}
		status, typ := strings.TrimSpace(cells[1]), strings.Trim(strings.TrimSpace(cells[2]), "`")
		rows[status+" "+typ] = true
	}
	for _, c := range Codes() {
		if key := fmt.Sprintf("%d %s", c.Status(), c.Type()); !rows[key] {
			t.Errorf("README error table has no row %q (code %s)", key, c)
		}
	}
}
