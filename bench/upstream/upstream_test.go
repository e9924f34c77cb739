package upstream

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
)

func post(t *testing.T, u, body string) (*http.Response, []byte) {
	t.Helper()
	resp, err := http.Post(u, "application/json", strings.NewReader(body))
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	return resp, b
}

func TestChat(t *testing.T) {
	srv := httptest.NewServer(New(Options{}))
	defer srv.Close()
	tests := []struct {
		model   string
		wantPII bool
	}{{"bench", false}, {ModelPII, true}}
	for _, tt := range tests {
		resp, b := post(t, srv.URL+"/v1/chat/completions", `{"model":"`+tt.model+`","messages":[]}`)
		if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "application/json" {
			t.Fatalf("%s: status %d type %q", tt.model, resp.StatusCode, resp.Header.Get("Content-Type"))
		}
		if len(b) < 900 || len(b) > 1200 {
			t.Errorf("%s: body is %d bytes, want about 1 KB", tt.model, len(b))
		}
		var v struct {
			Choices []struct{ Message struct{ Content string } }
		}
		if err := json.Unmarshal(b, &v); err != nil || len(v.Choices) != 1 {
			t.Fatalf("%s: not a chat completion: %v", tt.model, err)
		}
		if got := strings.Contains(v.Choices[0].Message.Content, "jane.doe@example.com"); got != tt.wantPII {
			t.Errorf("%s: has email = %v, want %v", tt.model, got, tt.wantPII)
		}
	}
	resp, b := post(t, srv.URL+"/v1/embeddings", `{"model":"e","input":"x"}`)
	if resp.StatusCode != 200 || !bytes.Contains(b, []byte(`"embedding":[`)) {
		t.Errorf("embeddings: %d %.80s", resp.StatusCode, b)
	}
	if resp, _ := post(t, srv.URL+"/v1/chat/completions", `not json`); resp.StatusCode != 400 {
		t.Errorf("bad body: status %d, want 400", resp.StatusCode)
	}
}

func TestStreamDeltas(t *testing.T) {
	for _, model := range []string{"bench", ModelPII} {
		d := StreamDeltas(model, 15)
		if len(d) != 15 || d[14] != StreamEnd {
			t.Fatalf("%s: %d deltas, last %q", model, len(d), d[len(d)-1])
		}
		if model == ModelPII && !strings.Contains(strings.Join(d, ""), "jane.doe@example.com") {
			t.Errorf("PII stream lacks the split email: %q", strings.Join(d, ""))
		}
	}
	srv := httptest.NewServer(New(Options{StreamDeltas: 5}))
	defer srv.Close()
	resp, b := post(t, srv.URL+"/v1/chat/completions", `{"model":"bench","stream":true}`)
	if resp.Header.Get("Content-Type") != "text/event-stream" {
		t.Fatalf("content type %q", resp.Header.Get("Content-Type"))
	}
	if n := bytes.Count(b, []byte("data: ")); n != 8 { // role + 5 deltas + stop + [DONE]
		t.Errorf("%d events, want 8:\n%s", n, b)
	}
	if !bytes.HasPrefix(b, []byte(`data: {"choices":[{"delta":{"content":"","role":"assistant"}`)) {
		t.Errorf("first event is not the role-only chunk: %.120s", b)
	}
	if !bytes.HasSuffix(b, []byte("data: [DONE]\n\n")) {
		t.Errorf("stream does not end with [DONE]")
	}
}

// A token minted by the issuer must verify with go-oidc through discovery
// and the JWKS — the same path Warden's identity stage takes.
func TestIssuerTokenVerifies(t *testing.T) {
	iss, err := NewIssuer("")
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(iss.Handler())
	defer srv.Close()
	iss.URL = srv.URL
	ctx := context.Background()
	p, err := oidc.NewProvider(ctx, srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := iss.Mint("alice", []string{"ml-users"}, "warden", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	idt, err := p.Verifier(&oidc.Config{ClientID: "warden"}).Verify(ctx, tok)
	if err != nil {
		t.Fatalf("verify: %v", err)
	}
	var c struct{ Groups []string }
	if err := idt.Claims(&c); err != nil || idt.Subject != "alice" || len(c.Groups) != 1 {
		t.Errorf("claims: sub %q groups %v err %v", idt.Subject, c.Groups, err)
	}
	if _, err := p.Verifier(&oidc.Config{ClientID: "other"}).Verify(ctx, tok); err == nil {
		t.Error("token verified for the wrong audience")
	}
}
