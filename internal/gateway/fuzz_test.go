package gateway

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"
)

// FuzzRequest sends arbitrary paths, content types, credentials and bodies
// through the full request path (identity, policy, audit) and requires
// that the gateway always answers — never panics or drops the connection —
// and that every error it produces itself is its JSON error shape.
func FuzzRequest(f *testing.F) {
	s := newStack(f)
	tok := s.token(f, "alice")
	f.Add("/v1/chat/completions", "application/json", "Bearer "+tok, []byte(`{"model":"m"}`))
	f.Add("/v1/chat/completions", "", "Bearer "+tok, []byte(`{"model":`))
	f.Add("/v1/%2e%2e/admin/stats", "text/plain", "", []byte("x"))
	f.Add("/admin/stats", "application/json", "Bearer x.y.z", []byte(nil))
	f.Add("//v1//chat/./completions", "application/json; charset=utf-8", "Basic abc", []byte(`[]`))
	f.Add("/v1/chat/completions", "application/json", "Bearer "+tok, []byte(`{"model":"m","n":1e999,"messages":[{"content":"\ud800"}]}`))
	client := &http.Client{Timeout: 5 * time.Second}
	f.Fuzz(func(t *testing.T, path, ct, auth string, body []byte) {
		if !strings.HasPrefix(path, "/") || strings.ContainsAny(path, " \r\n\t#?") || len(path) > 2048 {
			return // not a request line net/http would send
		}
		req, err := http.NewRequest("POST", s.gw+path, bytes.NewReader(body))
		if err != nil {
			return
		}
		req.URL.Opaque = path // send the path exactly as given
		if ct != "" && !strings.ContainsAny(ct, "\r\n") {
			req.Header.Set("Content-Type", ct)
		}
		if auth != "" && !strings.ContainsAny(auth, "\r\n\x00") {
			req.Header.Set("Authorization", auth)
		}
		resp, err := client.Do(req)
		if err != nil && strings.Contains(err.Error(), "invalid header") {
			return // refused by the client before sending
		}
		if err != nil {
			t.Fatalf("%q: no answer: %v", path, err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode >= 400 && resp.Header.Get("X-Request-Id") != "" {
			var eb errorBody
			if json.Unmarshal(b, &eb) != nil || eb.Error.Type == "" {
				t.Fatalf("%q -> %d with a non-JSON error: %s", path, resp.StatusCode, b)
			}
		}
	})
}
