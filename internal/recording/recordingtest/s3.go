package recordingtest

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

// S3Server is a versitygw process serving S3 over a local directory.
type S3Server struct {
	// Config reaches the server (bucket warden-test, created on first use).
	Config recording.S3Config
	// Dir is the directory versitygw serves (objects are files under
	// Dir/<bucket>/).
	Dir  string
	cmd  *exec.Cmd
	args []string
	mu   sync.Mutex
	done chan struct{}
}

// VersitygwPath finds the versitygw binary: $WARDEN_VERSITYGW, $PATH,
// then $GOBIN or $GOPATH/bin (where `go install` puts it).
func VersitygwPath() string {
	if p := os.Getenv("WARDEN_VERSITYGW"); p != "" {
		return p
	}
	if p, err := exec.LookPath("versitygw"); err == nil {
		return p
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if home, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(home, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "versitygw")
		if _, err := os.Stat(p); err == nil {
			return p
		}
	}
	return ""
}

// StartS3 starts versitygw on a free loopback port, or skips the test
// when it is not installed (and fails when WARDEN_TEST_REQUIRE_S3 is set,
// as in CI).
func StartS3(t testing.TB) *S3Server {
	t.Helper()
	bin := VersitygwPath()
	if bin == "" {
		if os.Getenv("WARDEN_TEST_REQUIRE_S3") != "" {
			t.Fatal("WARDEN_TEST_REQUIRE_S3 is set but versitygw is not installed (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
		}
		t.Skip("versitygw not installed; skipping S3 test (go install github.com/versity/versitygw/cmd/versitygw@v1.8.0)")
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	var b [8]byte
	rand.Read(b[:])
	secret := hex.EncodeToString(b[:])
	data := t.TempDir()
	s := &S3Server{
		Dir: data,
		Config: recording.S3Config{
			Endpoint: "http://" + addr, Bucket: "warden-test", AccessKey: "wardentest",
			PathStyle: true, CreateBucket: true, MaxRetries: 1,
		},
		args: []string{"--port", addr, "--access", "wardentest", "--secret", secret, "--quiet", "posix", data},
	}
	keyFile := filepath.Join(t.TempDir(), "s3.secret")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.Config.SecretKeyFile = keyFile
	s.start(t, bin)
	t.Cleanup(s.Stop)
	return s
}

func (s *S3Server) start(t testing.TB, bin string) {
	t.Helper()
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cmd = exec.Command(bin, s.args...)
	// Its log (it reports the broken uploads the contract tests make on
	// purpose) goes to a file, not the test output.
	logf, err := os.OpenFile(filepath.Join(os.TempDir(), "warden-versitygw-test.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err == nil {
		s.cmd.Stdout, s.cmd.Stderr = logf, logf
		defer logf.Close()
	}
	if err := s.cmd.Start(); err != nil {
		t.Fatalf("start versitygw: %v", err)
	}
	s.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(s.cmd, s.done)
	addr := s.Config.Endpoint[len("http://"):]
	deadline := time.Now().Add(20 * time.Second)
	for {
		c, err := net.DialTimeout("tcp", addr, 200*time.Millisecond)
		if err == nil {
			c.Close()
			return
		}
		select {
		case <-s.done:
			t.Fatalf("versitygw exited at start")
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("versitygw did not listen on %s within 20s", addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Stop kills the server (as an outage would).
func (s *S3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}

// Restart starts the server again on the same port and data.
func (s *S3Server) Restart(t testing.TB) { s.start(t, VersitygwPath()) }

// Store opens a store on s with a unique prefix.
func (s *S3Server) Store(t testing.TB) *recording.S3Store {
	t.Helper()
	cfg := s.Config
	var b [4]byte
	rand.Read(b[:])
	cfg.Prefix = fmt.Sprintf("t%s/", hex.EncodeToString(b[:]))
	st, err := recording.NewS3Store(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
