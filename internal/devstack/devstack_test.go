package devstack

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

func TestIssuerClientCredentials(t *testing.T) {
	_, srv := startIssuer(t)

	tests := []struct {
		name, user, secret string
		status             int
	}{
		{"alice", "alice", "demo", 200},
		{"service", "indexer", "demo", 200},
		{"wrong secret", "alice", "nope", 401},
		{"unknown user", "mallory", "demo", 401},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, _ := http.NewRequest("POST", srv.URL+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth(tt.user, tt.secret)
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			if resp.StatusCode != tt.status {
				t.Fatalf("status %d", resp.StatusCode)
			}
			if tt.status != 200 {
				return
			}
			var tok struct {
				AccessToken string `json:"access_token"`
			}
			if err := json.NewDecoder(resp.Body).Decode(&tok); err != nil {
				t.Fatal(err)
			}
			// A standard OIDC library accepts the issuer and its tokens.
			p, err := oidc.NewProvider(t.Context(), srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			v := p.Verifier(&oidc.Config{ClientID: DemoAudience, SupportedSigningAlgs: []string{"ES256"}})
			idt, err := v.Verify(t.Context(), tok.AccessToken)
			if err != nil {
				t.Fatal(err)
			}
			var claims struct {
				Groups   []string `json:"groups"`
				ClientID string   `json:"client_id"`
			}
			_ = idt.Claims(&claims)
			if idt.Subject != tt.user || len(claims.Groups) == 0 {
				t.Errorf("subject %q groups %v", idt.Subject, claims.Groups)
			}
			if (claims.ClientID == tt.user) != (tt.user == "indexer") {
				t.Errorf("client_id %q: only services carry client_id == sub", claims.ClientID)
			}
		})
	}
}

// TestModelStreamSplitsPII: the demo stream must split each PII value over
// several events, or it would not exercise the masker's reassembly.
func TestModelStreamSplitsPII(t *testing.T) {
	m := NewModelServer()
	m.ChunkDelay = 0
	srv := httptest.NewServer(m.Handler())
	defer srv.Close()
	resp, err := http.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"warden-demo-small","stream":true}`))
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.Contains(string(body), DemoPII.Card) || strings.Contains(string(body), DemoPII.Email) {
		t.Error("a PII value arrived whole in one event")
	}
	var text strings.Builder
	for _, line := range strings.Split(string(body), "\n") {
		data, ok := strings.CutPrefix(line, "data: ")
		if !ok || data == "[DONE]" {
			continue
		}
		var ev struct {
			Choices []struct {
				Delta struct{ Content string } `json:"delta"`
			} `json:"choices"`
		}
		if err := json.Unmarshal([]byte(data), &ev); err != nil {
			t.Fatalf("event %q: %v", data, err)
		}
		text.WriteString(ev.Choices[0].Delta.Content)
	}
	if text.String() != DemoAnswer() {
		t.Errorf("reassembled %q", text.String())
	}
}
