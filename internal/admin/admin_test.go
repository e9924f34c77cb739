package admin

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/wardenhq/warden/internal/identity"
)

// tokenAuth accepts "Bearer <name>" for a fixed table of principals.
type tokenAuth map[string]*identity.Principal

func (a tokenAuth) Authenticate(r *http.Request) (*identity.Principal, error) {
	h := r.Header.Get("Authorization")
	if h == "" {
		return nil, &identity.Error{Status: 401}
	}
	if p, ok := a[h[len("Bearer "):]]; ok {
		return p, nil
	}
	return nil, &identity.Error{Status: 401, Code: "invalid_token", Description: "signature invalid"}
}

func TestRequire(t *testing.T) {
	auth := tokenAuth{
		"carol": {Subject: "carol", Groups: []string{"ml-admins"}},
		"alice": {Subject: "alice", Groups: []string{"ml-users"}},
	}
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = w.Write([]byte(PrincipalFrom(r.Context()).Subject))
	})
	tests := []struct {
		name   string
		auth   Authenticator
		header string
		status int
		typ    string
	}{
		{"member", auth, "Bearer carol", 200, ""},
		{"not a member", auth, "Bearer alice", 403, "forbidden"},
		{"bad token", auth, "Bearer mallory", 401, "invalid_token"},
		{"no token", auth, "", 401, "unauthenticated"},
		{"no identity configured: closed", nil, "Bearer carol", 401, "invalid_request"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var a Authenticator
			if tt.auth != nil {
				a = tt.auth
			}
			h := Require(a, []string{"ml-admins", "auditors"}, ok)
			req := httptest.NewRequest("GET", "/v1/audit/entries", nil)
			if tt.header != "" {
				req.Header.Set("Authorization", tt.header)
			}
			rec := httptest.NewRecorder()
			h.ServeHTTP(rec, req)
			if rec.Code != tt.status {
				t.Fatalf("status %d, want %d: %s", rec.Code, tt.status, rec.Body)
			}
			if tt.status == 200 {
				if rec.Body.String() != "carol" {
					t.Errorf("principal not passed on: %q", rec.Body)
				}
				return
			}
			var body struct {
				Error struct{ Type, Message string }
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body.Error.Type != tt.typ {
				t.Errorf("error body %s (%v), want type %s", rec.Body, err, tt.typ)
			}
			if tt.status == 401 && rec.Header().Get("WWW-Authenticate") == "" {
				t.Error("401 without WWW-Authenticate")
			}
		})
	}
}
