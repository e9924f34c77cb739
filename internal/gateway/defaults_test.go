package gateway

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
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
