package export

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"fmt"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// rsyslog is a real rsyslogd in the foreground: plain TCP (imptcp) and
// TLS (imtcp with the gtls driver) inputs on free ports, writing what it
// parses to a file.
type rsyslog struct {
	dir      string
	tcpAddr  string
	tlsAddr  string
	ca       string
	out      string
	cmd      *exec.Cmd
	confPath string
}

func needRsyslog(t *testing.T) string {
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

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// writeCerts writes a CA and a server certificate for 127.0.0.1.
func writeCerts(t *testing.T, dir string) (ca, cert, key string) {
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

// startRsyslog writes a config and starts rsyslogd; ports may be reused
// from a previous instance (restart).
func startRsyslog(t *testing.T, prev *rsyslog) *rsyslog {
	t.Helper()
	bin := needRsyslog(t)
	r := prev
	if r == nil {
		r = &rsyslog{dir: t.TempDir()}
		ca, cert, key := writeCerts(t, r.dir)
		r.ca = ca
		r.tcpAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		r.tlsAddr = fmt.Sprintf("127.0.0.1:%d", freePort(t))
		r.out = filepath.Join(r.dir, "out.log")
		conf := strings.NewReplacer("{{dir}}", r.dir, "{{ca}}", ca, "{{cert}}", cert, "{{key}}", key, "{{out}}", r.out,
			"{{tcp}}", portOf(r.tcpAddr), "{{tls}}", portOf(r.tlsAddr)).Replace(rsyslogConf)
		r.confPath = filepath.Join(r.dir, "rsyslog.conf")
		t.Cleanup(func() {
			if t.Failed() {
				b, _ := os.ReadFile(filepath.Join(r.dir, "rsyslogd.log"))
				t.Logf("rsyslogd output:\n%s", b)
			}
		})
		if err := os.WriteFile(r.confPath, []byte(conf), 0o600); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(r.stop)
	}
	cmd := exec.Command(bin, "-n", "-f", r.confPath, "-i", filepath.Join(r.dir, "rsyslogd.pid"))
	logf, err := os.OpenFile(filepath.Join(r.dir, "rsyslogd.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
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
	for _, a := range []string{r.tcpAddr, r.tlsAddr} {
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

// stop ends rsyslogd (SIGTERM, then SIGKILL) and waits for it.
func (r *rsyslog) stop() {
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

// received is one message as rsyslog parsed it.
type received struct {
	version, facility, severity, time, host, app, procid, msgid, sd, msg string
}

func (r *rsyslog) read(t *testing.T) []received {
	t.Helper()
	f, err := os.Open(r.out)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	sc.Buffer(make([]byte, 1<<20), 4<<20)
	var out []received
	for sc.Scan() {
		p := strings.SplitN(sc.Text(), "|", 10)
		if len(p) != 10 {
			continue // a line still being written
		}
		out = append(out, received{p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], p[8], p[9]})
	}
	return out
}

// syslogEvents maps n entries of every kind (with non-ASCII text) to
// events.
func syslogEvents(t *testing.T, n int) []Event {
	t.Helper()
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	evs := make([]Event, n)
	for i := range evs {
		e := sampleEntries(catalogue[i%len(catalogue)])[0]
		e.Seq = int64(i)
		if e.Principal != nil {
			p := *e.Principal
			p.Name = "Zoë Ünïcode"
			e.Principal = &p
		}
		ev, err := m.Entry(e, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		evs[i] = ev
	}
	return evs
}

// sendAll delivers evs through s in batches of 200, retrying failures
// as the engine does.
func sendAll(t *testing.T, s Sink, evs []Event) (failures int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	for i := 0; i < len(evs); {
		batch := evs[i:min(i+200, len(evs))]
		ack, err := s.Send(ctx, batch)
		i += ack.Settled
		if err != nil {
			failures++
			if ctx.Err() != nil {
				t.Fatalf("gave up: %v", err)
			}
			time.Sleep(50 * time.Millisecond)
		}
	}
	return failures
}

// waitLines waits (up to 90 s, rsyslog is slow on a busy machine) until
// rsyslog has written n lines, and returns what it wrote.
func waitLines(t *testing.T, r *rsyslog, n int) []received {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(r.out)
		if bytes.Count(b, []byte("\n")) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r.read(t)
}

// TestSyslogRsyslog10k: rsyslog receives 10k events over TCP and 10k
// over TLS, every one in order and parsed as RFC 5424.
func TestSyslogRsyslog10k(t *testing.T) {
	r := startRsyslog(t, nil)
	evs := syslogEvents(t, 10_000)
	for _, tc := range []struct {
		name string
		cfg  SyslogConfig
	}{
		{"tcp", SyslogConfig{Address: r.tcpAddr, Hostname: "gw-1.example", Facility: "local4"}},
		{"tls", SyslogConfig{Address: r.tlsAddr, Transport: "tls", CAFile: r.ca, Hostname: "gw-1.example", Facility: "local4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(r.read(t))
			s, err := NewSyslogSink(tc.cfg)
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if f := sendAll(t, s, evs); f != 0 {
				t.Fatalf("%d failed sends", f)
			}
			got := waitLines(t, r, before+len(evs))[before:]
			if len(got) != len(evs) {
				t.Fatalf("rsyslog wrote %d messages, want %d", len(got), len(evs))
			}
			for i, g := range got {
				ev := evs[i]
				if g.msg != string(ev.JSON) {
					t.Fatalf("message %d: rsyslog has\n%.300s\nwant\n%.300s", i, g.msg, ev.JSON)
				}
				wantSev := strconv.Itoa(severityOf(ev.Severity))
				if g.version != "1" || g.facility != "20" || g.severity != wantSev || g.host != "gw-1.example" ||
					g.app != "warden" || g.msgid != ev.Kind || g.sd != "-" || g.procid != "-" {
					t.Fatalf("message %d parsed as %+v (want RFC 5424, facility 20, severity %s, msgid %s)", i, g, wantSev, ev.Kind)
				}
				if ts, err := time.Parse(time.RFC3339Nano, g.time); err != nil || !ts.Equal(ev.Time) {
					t.Fatalf("message %d: timestamp %q, want %v", i, g.time, ev.Time)
				}
			}
		})
	}
}

// TestSyslogRsyslogRestart: rsyslog is stopped while events flow and
// started again; everything arrives, in order (a batch in flight may
// arrive twice).
func TestSyslogRsyslogRestart(t *testing.T) {
	r := startRsyslog(t, nil)
	evs := syslogEvents(t, 3000)
	s, err := NewSyslogSink(SyslogConfig{Address: r.tlsAddr, Transport: "tls", CAFile: r.ca, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	done := make(chan int)
	go func() { done <- sendAll(t, s, evs) }()
	waitFor(t, "some messages", func() bool { b, _ := os.ReadFile(r.out); return bytes.Count(b, []byte("\n")) > 500 })
	r.stop()
	time.Sleep(300 * time.Millisecond)
	startRsyslog(t, r)
	failures := <-done
	if failures == 0 {
		t.Fatal("no send failed while rsyslog was down")
	}
	got := waitLines(t, r, len(evs))
	t.Logf("%d lines for %d events after %d failed sends", len(got), len(evs), failures)
	seen := map[string]bool{}
	last := -1
	for _, g := range got {
		var seq int
		fmt.Sscanf(g.msg[strings.Index(g.msg, `"uid":"warden-audit/`)+len(`"uid":"warden-audit/`):], "%d", &seq)
		if seq < last+1 && !seen[strconv.Itoa(seq)] {
			t.Fatalf("entry %d arrived out of order after %d", seq, last)
		}
		if seq > last+1 {
			t.Fatalf("entries %d..%d lost (next arrived %d)", last+1, seq-1, seq)
		}
		seen[strconv.Itoa(seq)] = true
		last = max(last, seq)
	}
	if len(seen) != len(evs) {
		t.Fatalf("%d distinct events arrived, want %d", len(seen), len(evs))
	}
}

func TestSyslogFormat(t *testing.T) {
	s, err := NewSyslogSink(SyslogConfig{Address: "127.0.0.1:1", Hostname: "héllo host", AppName: "warden"})
	if err != nil {
		t.Fatal(err)
	}
	ev := Event{Kind: "request.completed", Severity: 3, Time: time.Date(2026, 11, 26, 20, 0, 0, 123456789, time.UTC), JSON: []byte(`{"a":"ü"}`)}
	got := string(s.Format(ev))
	msg := `<108>1 2026-11-26T20:00:00.123456Z h__llo_host warden - request.completed - {"a":"ü"}`
	if want := strconv.Itoa(len(msg)) + " " + msg; got != want {
		t.Fatalf("got  %q\nwant %q", got, want)
	}
}

func TestSyslogConfigErrors(t *testing.T) {
	for _, c := range []SyslogConfig{
		{}, {Address: "nohost"}, {Address: "h:1", Transport: "udp"}, {Address: "h:1", Facility: "nope"},
		{Address: "h:1", CertFile: "c"}, {Address: "h:1", CAFile: "ca.pem"},
	} {
		if _, err := NewSyslogSink(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}

// TestSyslogUnreachable: no receiver, no delivery.
func TestSyslogUnreachable(t *testing.T) {
	s, err := NewSyslogSink(SyslogConfig{Address: fmt.Sprintf("127.0.0.1:%d", freePort(t)), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.Send(context.Background(), syslogEvents(t, 3))
	if err == nil || ack.Settled != 0 {
		t.Fatalf("Send to nobody: %+v %v", ack, err)
	}
}
