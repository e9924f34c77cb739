package gateway

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/mask"
	"github.com/wardenhq/warden/internal/policy"
)

// policyGateway is an anonymous gateway deciding by the policy src, with
// the built-in masking profiles, in front of upstream.
func policyGateway(t *testing.T, upstream, src string) string {
	t.Helper()
	pol, err := policy.Load("test.yaml", []byte(src))
	if err != nil {
		t.Fatal(err)
	}
	masks, err := mask.New(mask.Config{}, []byte("test-masking-key-0123"))
	if err != nil {
		t.Fatal(err)
	}
	cfg := &config.Config{
		Listen: "127.0.0.1:0", AdminListen: "127.0.0.1:1", AllowAnonymous: true,
		Routes: []config.Route{{Name: "openai", PathPrefix: "/v1/", Upstream: upstream, Profile: config.ProfileOpenAI}},
	}
	cfg.SetDefaults()
	g, err := New(cfg, Options{Policy: staticPolicy{pol}, Masks: masks})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(g)
	t.Cleanup(srv.Close)
	return srv.URL
}

// TestAllowWithoutMaskMasks: an allow rule that names no masking profile
// masks with the default one; the raw value reaches the caller only under
// an explicit `mask: none`.
func TestAllowWithoutMaskMasks(t *testing.T) {
	const email = "jane.doe@example.com"
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"choices":[{"message":{"role":"assistant","content":"write to `+email+` today"}}]}`)
	}))
	defer up.Close()
	get := func(gw string) string {
		resp, err := http.Post(gw+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode != http.StatusOK {
			t.Fatalf("status %d: %s", resp.StatusCode, b)
		}
		return string(b)
	}
	masked := get(policyGateway(t, up.URL, "version: 1\nrules:\n  - name: all\n    when: 'true'\n    action: allow\n"))
	if strings.Contains(masked, email) || strings.Contains(masked, "jane.doe") {
		t.Fatalf("allow rule without mask: returned raw PII: %s", masked)
	}
	if !strings.Contains(masked, "write to ") {
		t.Fatalf("response mangled: %s", masked)
	}
	raw := get(policyGateway(t, up.URL, "version: 1\nrules:\n  - name: all\n    when: 'true'\n    action: allow\n    mask: none\n"))
	if !strings.Contains(raw, email) {
		t.Fatalf("mask: none still masked: %s", raw)
	}
}

// TestOpenAIFieldTypesBeforePolicy: "max_tokens":"8000" no longer slips
// past a numeric cap rule: the body is refused with 400 naming the field,
// and nothing reaches the upstream; the numeric cap still denies and a
// well-typed request passes.
func TestOpenAIFieldTypesBeforePolicy(t *testing.T) {
	var hits atomic.Int64
	up := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, `{"ok":true}`)
	}))
	defer up.Close()
	gw := policyGateway(t, up.URL, `version: 1
rules:
  - name: cap
    when: has(body.max_tokens) && body.max_tokens > 4096
    action: deny
    reason: at most 4096 tokens
  - name: rest
    when: "true"
    action: allow
`)
	cases := []struct {
		body   string
		status int
		msg    string
	}{
		{`{"model":"m","max_tokens":"8000"}`, http.StatusBadRequest, `field "max_tokens" must be an integer, got a string`},
		{`{"model":"m","stream":"yes"}`, http.StatusBadRequest, `field "stream" must be a boolean`},
		{`{"model":"m","max_tokens":10,"max_tokens":8000}`, http.StatusBadRequest, `"max_tokens" appears more than once`},
		{`{"model":"m","max_tokens":8000}`, http.StatusForbidden, "at most 4096 tokens"},
		{`{"model":"m","max_tokens":100}`, http.StatusOK, ""},
	}
	for _, tc := range cases {
		before := hits.Load()
		resp, err := http.Post(gw+"/v1/chat/completions", "application/json", strings.NewReader(tc.body))
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		var eb errorBody
		_ = json.Unmarshal(b, &eb)
		if resp.StatusCode != tc.status || !strings.Contains(eb.Error.Message, tc.msg) {
			t.Fatalf("%s: %d %s, want %d %q", tc.body, resp.StatusCode, b, tc.status, tc.msg)
		}
		if tc.status == http.StatusBadRequest && !strings.Contains(string(b), `"type":"bad_request"`) {
			t.Fatalf("%s: %s", tc.body, b)
		}
		if forwarded := hits.Load() - before; (tc.status == http.StatusOK) != (forwarded == 1) {
			t.Fatalf("%s: forwarded %d times", tc.body, forwarded)
		}
	}
}
