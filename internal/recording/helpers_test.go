package recording_test

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
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// testCtx is a context bounded by the test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is a recorder with its stores, as the gateway would wire it.
type env struct {
	dir   string
	blobs recording.BlobStore
	cat   *sqlite.RecordingCatalog
	keys  *recording.Keyring
	rec   *recording.Recorder
}

// newEnv builds a recorder over a filesystem store (or blobs, if given)
// and a SQLite catalogue in a temporary data dir.
func newEnv(t testing.TB, blobs recording.BlobStore, tweak func(*recording.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	if blobs == nil {
		fs, err := recording.NewFSStore(filepath.Join(dir, "recordings", "objects"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		blobs = fs
	}
	cat, err := sqlite.OpenRecordingCatalog(context.Background(), filepath.Join(dir, "recordings", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	kek, err := recording.LoadOrCreateKEKFile(filepath.Join(dir, "keys", recording.KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, blobs: blobs, cat: cat, keys: recording.NewKeyring(kek)}
	opts := recording.Options{
		Blobs: blobs, Catalog: cat, Keys: e.keys,
		SpillDir: filepath.Join(dir, "recordings", "tmp"),
	}
	if tweak != nil {
		tweak(&opts)
	}
	e.rec, err = recording.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rec.Close() })
	return e
}

// s3Server is a versitygw process serving S3 over a local directory.
type s3Server struct {
	cfg  recording.S3Config
	cmd  *exec.Cmd
	args []string
	mu   sync.Mutex
	done chan struct{}
}

// versitygwPath finds the versitygw binary: $WARDEN_VERSITYGW, $PATH,
// then $GOBIN or $GOPATH/bin (where `go install` puts it).
func versitygwPath() string {
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

// startS3 starts versitygw on a free loopback port, or skips the test
// when it is not installed (and fails when WARDEN_TEST_REQUIRE_S3 is set,
// as in CI).
func startS3(t testing.TB) *s3Server {
	t.Helper()
	bin := versitygwPath()
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
	s := &s3Server{
		cfg: recording.S3Config{
			Endpoint: "http://" + addr, Bucket: "warden-test", AccessKey: "wardentest",
			PathStyle: true, CreateBucket: true, MaxRetries: 1,
		},
		args: []string{"--port", addr, "--access", "wardentest", "--secret", secret, "--quiet", "posix", data},
	}
	keyFile := filepath.Join(t.TempDir(), "s3.secret")
	if err := os.WriteFile(keyFile, []byte(secret+"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	s.cfg.SecretKeyFile = keyFile
	s.start(t, bin)
	t.Cleanup(s.Stop)
	return s
}

func (s *s3Server) start(t testing.TB, bin string) {
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
	addr := s.cfg.Endpoint[len("http://"):]
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
func (s *s3Server) Stop() {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.cmd != nil && s.cmd.Process != nil {
		s.cmd.Process.Kill()
		<-s.done
		s.cmd = nil
	}
}

// Restart starts the server again on the same port and data.
func (s *s3Server) Restart(t testing.TB) { s.start(t, versitygwPath()) }

// newS3Store opens a store on s with a unique prefix.
func (s *s3Server) store(t testing.TB) *recording.S3Store {
	t.Helper()
	cfg := s.cfg
	var b [4]byte
	rand.Read(b[:])
	cfg.Prefix = fmt.Sprintf("t%s/", hex.EncodeToString(b[:]))
	st, err := recording.NewS3Store(testCtx(t), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return st
}
