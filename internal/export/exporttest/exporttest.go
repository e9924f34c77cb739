// Package exporttest holds the test harness shared by the export tests
// and the end-to-end tests of the gateway: a real rsyslogd, and a TCP
// proxy that makes a receiver look down and up again. Test code only.
package exporttest

import (
	"bufio"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"
)

// Rsyslog is a real rsyslogd in the foreground: plain TCP (imptcp) and
// TLS (imtcp with the gtls driver) inputs on free ports, writing what it
// parses to a file.
type Rsyslog struct {
	// Dir holds its config, certificates and output.
	Dir string
	// TCPAddr and TLSAddr are its plain TCP and TLS inputs.
	TCPAddr, TLSAddr string
	// CA is the CA certificate of its TLS input.
	CA string
	// Out is the file it writes each parsed message to (see Read).
	Out      string
	cmd      *exec.Cmd
	confPath string
}

// NeedRsyslog returns the rsyslogd binary, or skips the test (fails it
// when WARDEN_TEST_REQUIRE_RSYSLOG is set).
func NeedRsyslog(t *testing.T) string {
	t.Helper()
	p, err := exec.LookPath("rsyslogd")
	if err != nil {
		for _, c := range []string{"/usr/sbin/rsyslogd", "/sbin/rsyslogd"} {
			if _, err := os.Stat(c); err == nil {
				return c
			}
		}
		if os.Getenv("WARDEN_TEST_REQUIRE_RSYSLOG") != "" {
			t.Fatal("rsyslogd is not installed but WARDEN_TEST_REQUIRE_RSYSLOG is set (apt-get install rsyslog rsyslog-gnutls)")
		}
		t.Skip("rsyslogd not installed (apt-get install rsyslog rsyslog-gnutls); skipping the syslog tests")
	}
	return p
}

// FreePort returns a loopback port nobody listens on right now.
func FreePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// WriteCerts writes a CA and a server certificate for 127.0.0.1.
func WriteCerts(t *testing.T, dir string) (ca, cert, key string) {
	t.Helper()
	caKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	caTmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "warden test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	caCert, _ := x509.ParseCertificate(caDER)
	srvKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	srvTmpl := &x509.Certificate{SerialNumber: big.NewInt(2), Subject: pkix.Name{CommonName: "127.0.0.1"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		KeyUsage: x509.KeyUsageDigitalSignature, ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth}}
	srvDER, err := x509.CreateCertificate(rand.Reader, srvTmpl, caCert, &srvKey.PublicKey, caKey)
	if err != nil {
		t.Fatal(err)
	}
	keyDER, _ := x509.MarshalECPrivateKey(srvKey)
	write := func(name, typ string, der []byte) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, pem.EncodeToMemory(&pem.Block{Type: typ, Bytes: der}), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	return write("ca.pem", "CERTIFICATE", caDER), write("server.pem", "CERTIFICATE", srvDER), write("server-key.pem", "EC PRIVATE KEY", keyDER)
}

// rsyslogConf is the rsyslogd configuration: RFC 5424 fields of every
// message, one line each, separated by |.
const rsyslogConf = `global(
  workDirectory="{{dir}}"
  maxMessageSize="512k"
  defaultNetstreamDriverCAFile="{{ca}}"
  defaultNetstreamDriverCertFile="{{cert}}"
  defaultNetstreamDriverKeyFile="{{key}}"
)
# Drain the queue on shutdown: a receiver that drops what it already
# acknowledged loses events whatever the sender does.
main_queue(queue.timeoutShutdown="60000" queue.timeoutEnqueue="60000")
module(load="imptcp")
module(load="imtcp" streamDriver.name="gtls" streamDriver.mode="1" streamDriver.authMode="anon")
template(name="fields" type="string"
  string="%protocol-version%|%syslogfacility%|%syslogseverity%|%timereported:::date-rfc3339%|%hostname%|%app-name%|%procid%|%msgid%|%structured-data%|%msg%\n")
ruleset(name="out") {
  action(type="omfile" file="{{out}}" template="fields")
}
input(type="imptcp" address="127.0.0.1" port="{{tcp}}" ruleset="out")
input(type="imtcp" address="127.0.0.1" port="{{tls}}" ruleset="out")
`

// StartRsyslog writes a config and starts rsyslogd; ports may be reused
// from a previous instance (restart).
func StartRsyslog(t *testing.T, prev *Rsyslog) *Rsyslog {
	t.Helper()
	bin := NeedRsyslog(t)
	r := prev
	if r == nil {
		r = &Rsyslog{Dir: t.TempDir()}
		ca, cert, key := WriteCerts(t, r.Dir)
		r.CA = ca
		r.TCPAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		r.TLSAddr = fmt.Sprintf("127.0.0.1:%d", FreePort(t))
		r.Out = filepath.Join(r.Dir, "out.log")
		conf := strings.NewReplacer("{{dir}}", r.Dir, "{{ca}}", ca, "{{cert}}", cert, "{{key}}", key, "{{out}}", r.Out,
			"{{tcp}}", portOf(r.TCPAddr), "{{tls}}", portOf(r.TLSAddr)).Replace(rsyslogConf)
		r.confPath = filepath.Join(r.Dir, "rsyslog.conf")
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(r.Dir, "rsyslogd.log"))
				t.Logf("rsyslogd output:\n%s", b)
			}
		})
		if err := os.WriteFile(r.confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.Stop)
	}
	cmd := exec.Command(bin, "-n", "-f", r.confPath, "-i", filepath.Join(r.Dir, "rsyslogd.pid"))
	logf, err := os.OpenFile(filepath.Join(r.Dir, "rsyslogd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer logf.Close()
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	r.cmd = cmd
	deadline := time.Now().Add(20 * time.Second)
	for _, a := range []string{r.TCPAddr, r.TLSAddr} {
		for {
			c, err := net.DialTimeout("tcp", a, time.Second)
			if err == nil {
				c.Close()
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("rsyslogd did not listen on %s", a)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	return r
}

func portOf(addr string) string { _, p, _ := net.SplitHostPort(addr); return p }

// Stop ends rsyslogd (SIGTERM, then SIGKILL) and waits for it.
func (r *Rsyslog) Stop() {
	if r.cmd == nil {
		return
	}
	r.cmd.Process.Signal(syscall.SIGTERM)
	done := make(chan struct{})
	go func() { r.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		r.cmd.Process.Kill()
		<-done
	}
	r.cmd = nil
}

// Received is one message as rsyslog parsed it.
type Received struct {
	Version, Facility, Severity, Time, Host, App, ProcID, MsgID, SD, Msg string
}

// Read returns every message rsyslog has written so far.
func (r *Rsyslog) Read(t *testing.T) []Received {
	t.Helper()
	f, err := os.Open(r.Out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var out []Received
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "|", 10)
		if len(p) != 10 {
			continue // a line still being written
		}
		out = append(out, Received{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]})
	}
	return out
}

// TCPProxy forwards 127.0.0.1:<port> to a target; Cut() drops every
// connection and stops listening (the receiver looks down), Restore()
// listens again on the same port.
type TCPProxy struct {
	t      *testing.T
	target string
	// Addr is where the proxy listens.
	Addr string

	mu    sync.Mutex
	ln    net.Listener
	conns []net.Conn
}

// NewTCPProxy starts a proxy to target; it is cut when the test ends.
func NewTCPProxy(t *testing.T, target string) *TCPProxy {
	t.Helper()
	p := &TCPProxy{t: t, target: target}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p.Addr = ln.Addr().String()
	p.serve(ln)
	t.Cleanup(p.Cut)
	return p
}

func (p *TCPProxy) serve(ln net.Listener) {
	p.mu.Lock()
	p.ln = ln
	p.mu.Unlock()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			u, err := net.DialTimeout("tcp", p.target, 5*time.Second)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, u)
			p.mu.Unlock()
			go func() { io.Copy(u, c); u.Close(); c.Close() }()
			go func() { io.Copy(c, u); u.Close(); c.Close() }()
		}
	}()
}

// Cut drops all connections and stops listening.
func (p *TCPProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.ln != nil {
		p.ln.Close()
		p.ln = nil
	}
	for _, c := range p.conns {
		c.Close()
	}
	p.conns = nil
}

// Restore listens again on the same address.
func (p *TCPProxy) Restore() {
	p.t.Helper()
	var ln net.Listener
	var err error
	for i := 0; i < 100; i++ {
		if ln, err = net.Listen("tcp", p.Addr); err == nil {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	if err != nil {
		p.t.Fatalf("proxy: listen again on %s: %v", p.Addr, err)
	}
	p.serve(ln)
}
