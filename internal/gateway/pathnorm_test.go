package gateway

import (
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
)

func TestNormalizePath(t *testing.T) {
	tests := []struct {
		in   string
		want string // "" means refused
	}{
		{"/v1/chat/completions", "/v1/chat/completions"},
		{"", "/"},
		{"/", "/"},
		{"//admin", "/admin"},
		{"/v1//chat///completions", "/v1/chat/completions"},
		{"/v1/../admin", "/admin"},
		{"/v1/./chat", "/v1/chat"},
		{"/v1/%2e%2e/admin", "/admin"},
		{"/v1/%2E%2E/admin", "/admin"},
		{"/v1/.%2e/admin", "/admin"},
		{"/v1/%2e/chat", "/v1/chat"},
		{"/v1/chat%2Fcompletions", "/v1/chat%2Fcompletions"}, // kept, refused by route
		{"/v1/chat%2fcompletions", "/v1/chat%2Fcompletions"},
		{"/v1/%63hat", "/v1/chat"},
		{"/V1/Chat", "/V1/Chat"}, // case is significant
		{"/v1/models/llama%20three", "/v1/models/llama%20three"},
		{"/v1/chat/", "/v1/chat/"},
		{"/v1/chat/.", "/v1/chat/"},
		{"/..", ""},
		{"/v1/../../etc/passwd", ""},
		{"/v1/%2e%2e/%2e%2e/x", ""},
		{"/admin.", ""},
		{"/admin./stats", ""},
		{"/admin%2e/stats", ""},
		{"/v1/chat..", ""},
		{"/v1\\..\\admin", ""},
		{"/v1/%5c../admin", ""},
		{"/v1/%5C", ""},
		{"/admin;jsessionid=1", ""},
		{"/v1/%00", ""},
		{"/v1/%0a", ""},
		{"/v1/%zz", ""},
		{"/v1/%2", ""},
		{"v1/chat", ""},
	}
	for _, tt := range tests {
		got, err := normalizePath(tt.in)
		if tt.want == "" {
			if err == nil {
				t.Errorf("normalizePath(%q) = %q, want refusal", tt.in, got)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("normalizePath(%q) = %q, %v; want %q", tt.in, got, err, tt.want)
		}
	}
}

// FuzzNormalizePath checks that normalisation never panics, is
// idempotent, and never yields a dot segment or a double slash.
func FuzzNormalizePath(f *testing.F) {
	for _, s := range []string{"/v1/../admin", "/v1/%2e%2e/x", "//a//b", "/a/./b/", "/%41"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		p, err := normalizePath(in)
		if err != nil {
			return
		}
		again, err := normalizePath(p)
		if err != nil || again != p {
			t.Fatalf("not idempotent: %q -> %q -> %q, %v", in, p, again, err)
		}
		if strings.Contains(p, "//") || strings.Contains(p+"/", "/../") || strings.Contains(p+"/", "/./") {
			t.Fatalf("%q -> %q still has dot segments or double slashes", in, p)
		}
	})
}

// rawRequest sends a request line byte for byte, so that no client
// library cleans the path first, and returns status and upstream path.
func rawRequest(t *testing.T, gwURL, path string) (int, string, string) {
	t.Helper()
	addr := strings.TrimPrefix(gwURL, "http://")
	conn, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, _ = io.WriteString(conn, "GET "+path+" HTTP/1.1\r\nHost: "+addr+"\r\nConnection: close\r\n\r\n")
	resp, err := http.ReadResponse(newBufReader(conn), nil)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("X-Upstream-Path"), string(body)
}

// TestPathBypassEndToEnd sends the bypass attempts of issue 2 through a
// real gateway and checks that the upstream sees the single normalised
// path, or that the gateway refuses with 400 (or 404 when no route).
func TestPathBypassEndToEnd(t *testing.T) {
	up := echoUpstream(t)
	_, gw := newTestGateway(t, up.URL, nil)
	tests := []struct {
		path         string
		wantStatus   int
		wantUpstream string
	}{
		{"/v1/chat/completions", 200, "/v1/chat/completions"},
		{"/v1/../admin/stats", 200, "/admin/stats"}, // routed (and later decided by policy) as /admin/stats
		{"/v1/%2e%2e/admin/stats", 200, "/admin/stats"},
		{"//admin/stats", 200, "/admin/stats"},
		{"/v1//chat/completions", 200, "/v1/chat/completions"},
		{"/v1/chat%2Fcompletions", 400, ""},
		{"/files/a%2Fb", 200, "/files/a%2Fb"}, // route allows encoded slashes
		{"/V1/chat/completions", 404, ""},     // case-sensitive: no route
		{"/admin./stats", 400, ""},
		{"/admin%2e/stats", 400, ""},
		{"/v1/chat/completions.", 400, ""},
		{"/v1/..%5cadmin", 400, ""},
		{"/v1/../../admin", 400, ""},
		{"/admin;x=1/stats", 400, ""},
	}
	for _, tt := range tests {
		status, upPath, body := rawRequest(t, gw, tt.path)
		if status != tt.wantStatus || upPath != tt.wantUpstream {
			t.Errorf("%s: status %d upstream %q; want %d %q (body %s)", tt.path, status, upPath, tt.wantStatus, tt.wantUpstream, body)
		}
		if status >= 400 && !strings.Contains(body, `"error":{"type":`) {
			t.Errorf("%s: error body is not JSON: %s", tt.path, body)
		}
	}
	// A malformed escape is refused by net/http itself, before any handler
	// runs (plain-text 400): nothing is forwarded either way.
	if status, upPath, _ := rawRequest(t, gw, "/v1/%zz"); status != 400 || upPath != "" {
		t.Errorf("/v1/%%zz: status %d upstream %q", status, upPath)
	}
}
