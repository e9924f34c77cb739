package nginx

import (
	"strings"
	"testing"
)

func TestRender(t *testing.T) {
	b, err := Render(Config{Dir: "/tmp/x", Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"daemon off;", "worker_processes 2;", "listen 127.0.0.1:1;", "server 127.0.0.1:2;",
		"keepalive 512;", "proxy_buffering off;", "proxy_http_version 1.1;", `proxy_set_header Connection "";`,
		"pid /tmp/x/nginx.pid;",
	} {
		if !strings.Contains(string(b), want) {
			t.Errorf("config lacks %q", want)
		}
	}
}
