package admin_test

import (
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// FuzzAdminRequest: whatever the method, path, credential and body, the
// admin API never fails internally, and every error it answers is the
// one shape with the answer's request id.
func FuzzAdminRequest(f *testing.F) {
	for _, s := range [][4]string{
		{"GET", "/v1/audit/entries?limit=5&desc=true", "dan", ""},
		{"GET", "/v1/audit/entries/18446744073709551616", "dan", ""},
		{"GET", "/v1/audit/consistency?from=1&to=-1", "dan", ""},
		{"GET", "/v1/audit/entries?from=2026-01-01T00:00:00Z&to=1999-01-01T00:00:00Z&q=%22%27%3B--", "dan", ""},
		{"POST", "/v1/approvals", "alice", `{"setting":"ft","justification":"\u0000","scope":{"paths":["` + strings.Repeat("*", 300) + `"]}}`},
		{"POST", "/v1/approvals", "alice", `{"setting":"ft","justification":"x","duration":"9999999999h"}`},
		{"POST", "/v1/approvals/%00/approve", "bob", `{"reason":"x"}`},
		{"POST", "/v1/keys", "erin", `{"name":"a","groups":[` + strings.Repeat(`"g",`, 70) + `"g"]}`},
		{"POST", "/v1/keys", "erin", `{"name":"a","expires":"1ns"}`},
		{"POST", "/v1/policy/reload", "raw:Bearer " + strings.Repeat("A", 20000), ""},
		{"GET", "/v1/grants", "raw:Bearer wk_0123456789abcdef_x", ""},
		{"PUT", "/v1/keys/0123456789abcdef/revoke", "erin", "{}"},
		{"GET", "/v1/policy/versions?limit=1000", "dan", ""},
	} {
		f.Add(s[0], s[1], s[2], s[3])
	}
	e := newEnv(f)
	f.Fuzz(func(t *testing.T, method, path, user, body string) {
		u, err := url.ParseRequestURI(path)
		if err != nil || !strings.HasPrefix(path, "/") || strings.ContainsAny(method, " \t\r\n") || method == "" {
			return
		}
		req := httptest.NewRequest("GET", "/", strings.NewReader(body))
		req.Method, req.URL, req.RequestURI = method, u, path
		switch {
		case strings.HasPrefix(user, "raw:"):
			req.Header.Set("Authorization", strings.TrimPrefix(user, "raw:"))
		case e.tokens[user] != "":
			req.Header.Set("Authorization", "Bearer "+e.tokens[user])
		}
		w := httptest.NewRecorder()
		e.rt.ServeHTTP(w, req)
		b, _ := io.ReadAll(w.Result().Body)
		a := answer{w.Code, w.Header(), b}
		if a.status >= 500 && a.status != http.StatusServiceUnavailable {
			t.Fatalf("%s %s as %q: %d %s", method, path, user, a.status, b)
		}
		if a.status >= 400 {
			a.errorType(t)
		}
	})
}
