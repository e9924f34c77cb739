// Package oidcprovidertest runs the real OpenID provider of the tests —
// panva/oidc-provider under Node, in internal/identity/testdata/oidc-provider
// — for the identity interop test and the console's browser login. Only
// tests import it.
package oidcprovidertest

import (
	"bufio"
	"context"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"testing"
	"time"
)

// Start runs script (server.js or login.js) of the provider's directory
// with PORT set to a free port and env added, and returns the issuer it
// prints ("ready <issuer>"). The process stops at the end of the test.
// Without the npm install or Node it skips the test, except under
// WARDEN_TEST_REQUIRE_INTEROP (as in CI), where it fails.
func Start(t *testing.T, script string, env ...string) string {
	t.Helper()
	_, self, _, _ := runtime.Caller(0)
	dir := filepath.Join(filepath.Dir(self), "..", "testdata", "oidc-provider")
	skip := t.Skip
	if os.Getenv("WARDEN_TEST_REQUIRE_INTEROP") != "" {
		skip = t.Fatal
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider")); err != nil {
		skip("oidc-provider not installed; run `npm ci --prefix internal/identity/testdata/oidc-provider` to enable this test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found in PATH; install Node.js 20 to run the oidc-provider tests")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	ctx, cancel := context.WithCancel(context.Background())
	cmd := exec.CommandContext(ctx, node, script)
	cmd.Dir = dir
	cmd.Env = append(append(os.Environ(), "PORT="+strconv.Itoa(port)), env...)
	cmd.Stderr = os.Stderr
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = cmd.Wait() })
	ready := make(chan string, 1)
	go func() {
		for sc := bufio.NewScanner(stdout); sc.Scan(); {
			if iss, ok := strings.CutPrefix(sc.Text(), "ready "); ok {
				ready <- iss
			}
		}
	}()
	select {
	case iss := <-ready:
		return iss
	case <-time.After(60 * time.Second): // bounds a hang on a loaded machine
		t.Fatalf("oidc-provider %s did not start within 60s", script)
	}
	return ""
}
