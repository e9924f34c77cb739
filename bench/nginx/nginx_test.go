package nginx

import (
	"os/exec"
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

// The generated config must be accepted by the real nginx, when installed.
func TestConfigAcceptedByNginx(t *testing.T) {
	bin, err := Find()
	if err != nil {
		t.Skip("nginx not installed; skipping the nginx -t check")
	}
	dir := t.TempDir()
	argv, err := Prepare(bin, Config{Dir: dir, Listen: "127.0.0.1:1", Upstream: "127.0.0.1:2"})
	if err != nil {
		t.Fatal(err)
	}
	// nginx -t needs the same prefix and error log flags as the real run.
	cmd := exec.Command(argv[0], append([]string{"-t"}, argv[1:]...)...)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nginx -t: %v\n%s", err, out)
	}
}
