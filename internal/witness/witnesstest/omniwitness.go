package witnesstest

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"database/sql"
	"encoding/base64"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	_ "modernc.org/sqlite" // reads the omniwitness's own database

	"github.com/wardenhq/warden/internal/witness"
)

// OmniwitnessModule is the transparency-dev witness build the
// interoperability tests run; .ci/run installs it with
// `go install <OmniwitnessModule>`.
const OmniwitnessModule = "github.com/transparency-dev/witness/cmd/omniwitness@v0.0.0-20260720115447-2e1c6971d19e"

// RequireEnv, when "1", turns a missing omniwitness binary into a test
// failure instead of a skip (CI sets it after installing the binary).
const RequireEnv = "WARDEN_TEST_REQUIRE_WITNESS"

// BinaryEnv names the omniwitness binary's path (else PATH, $GOBIN and
// $HOME/go/bin are searched).
const BinaryEnv = "WARDEN_OMNIWITNESS"

// External is a transparency-dev omniwitness running as its own process
// on 127.0.0.1, with a fresh key, SQLite storage and the given logs.
type External struct {
	// URL is the submission prefix; Name and Key the witness's key name
	// and cosignature/v1 verifier key.
	URL, Name, Key string
	// LogsYAML is the -additional_logs file it was started with.
	LogsYAML string

	bin, dir, addr, keyFile, db string
	mu                          sync.Mutex
	cmd                         *exec.Cmd
	out                         *bytes.Buffer
	done                        chan struct{}
}

// OmniwitnessBinary finds the omniwitness binary; ok is false when none
// is installed.
func OmniwitnessBinary() (string, bool) {
	if p := os.Getenv(BinaryEnv); p != "" {
		_, err := os.Stat(p)
		return p, err == nil
	}
	if p, err := exec.LookPath("omniwitness"); err == nil {
		return p, true
	}
	var dirs []string
	if d := os.Getenv("GOBIN"); d != "" {
		dirs = append(dirs, d)
	}
	if d := os.Getenv("GOPATH"); d != "" {
		dirs = append(dirs, filepath.Join(d, "bin"))
	}
	if h, err := os.UserHomeDir(); err == nil {
		dirs = append(dirs, filepath.Join(h, "go", "bin"))
	}
	for _, d := range dirs {
		p := filepath.Join(d, "omniwitness")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
	}
	return "", false
}

// Omniwitness starts an omniwitness named name that witnesses the logs
// with the given note verifier keys (origin = key name). Without the
// binary the test is skipped, or fails when RequireEnv is 1. The process
// stops at the end of the test.
func Omniwitness(t testing.TB, name string, logVKeys ...string) *External {
	t.Helper()
	bin, ok := OmniwitnessBinary()
	if !ok {
		msg := "omniwitness not installed: go install " + OmniwitnessModule + " (or set " + BinaryEnv + ")"
		if os.Getenv(RequireEnv) == "1" {
			t.Fatalf("%s; %s=1 requires it", msg, RequireEnv)
		}
		t.Skip(msg + "; skipping the witness interoperability test")
	}
	e := &External{Name: name, bin: bin, dir: t.TempDir()}
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := base64.StdEncoding.DecodeString(strings.SplitN(vkey, "+", 3)[2])
	if err != nil || len(raw) != 1+ed25519.PublicKeySize {
		t.Fatalf("generated key: %v", err)
	}
	if e.Key, err = witness.VerifierKey(name, raw[1:]); err != nil {
		t.Fatal(err)
	}
	e.keyFile = filepath.Join(e.dir, "witness.key")
	if err := os.WriteFile(e.keyFile, []byte(skey), 0o600); err != nil {
		t.Fatal(err)
	}
	var y strings.Builder
	y.WriteString("Logs:\n")
	for _, k := range logVKeys {
		fmt.Fprintf(&y, "  - Origin: %s\n    PublicKey: %s\n", k[:strings.Index(k, "+")], k)
	}
	e.LogsYAML = filepath.Join(e.dir, "logs.yaml")
	if err := os.WriteFile(e.LogsYAML, []byte(y.String()), 0o644); err != nil {
		t.Fatal(err)
	}
	e.db = filepath.Join(e.dir, "witness.db")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	e.addr = ln.Addr().String()
	ln.Close()
	e.URL = "http://" + e.addr
	e.Start(t)
	t.Cleanup(e.Stop)
	return e
}

// Start (re)starts the process on its address and database.
func (e *External) Start(t testing.TB) {
	t.Helper()
	e.mu.Lock()
	defer e.mu.Unlock()
	// Loopback only; no metrics listener; no distributor, bastion or
	// public witness network (nothing is fetched from outside).
	e.cmd = exec.Command(e.bin, "-listen", e.addr, "-metrics_listen=", "-db_file", e.db,
		"-private_key_path", e.keyFile, "-additional_logs", e.LogsYAML)
	e.out = &bytes.Buffer{}
	e.cmd.Stdout, e.cmd.Stderr = e.out, e.out
	if err := e.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	e.done = make(chan struct{})
	go func(cmd *exec.Cmd, done chan struct{}) { cmd.Wait(); close(done) }(e.cmd, e.done)
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		select {
		case <-e.done:
			t.Fatalf("omniwitness exited:\n%s", e.out)
		default:
		}
		if c, err := net.Dial("tcp", e.addr); err == nil {
			c.Close()
			return
		}
	}
	t.Fatalf("omniwitness did not listen on %s:\n%s", e.addr, e.out)
}

// Stop kills the process (its database stays for Start).
func (e *External) Stop() {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.cmd == nil {
		return
	}
	e.cmd.Process.Kill()
	<-e.done
	e.cmd = nil
}

// Output is what the process printed.
func (e *External) Output() string {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.out == nil {
		return ""
	}
	return e.out.String()
}

// Latest reads the cosigned checkpoint the witness holds for origin from
// its own database (what the witness's operator hands an auditor); nil if
// none.
func (e *External) Latest(t testing.TB, origin string) []byte {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+e.db+"?mode=ro&_busy_timeout=10000")
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rows, err := db.Query("SELECT chkpt FROM chkpts")
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var b []byte
		if err := rows.Scan(&b); err != nil {
			t.Fatal(err)
		}
		if strings.HasPrefix(string(b), origin+"\n") {
			return b
		}
	}
	return nil
}
