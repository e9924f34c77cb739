package export

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/export/exporttest"
)

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
func waitLines(t *testing.T, r *exporttest.Rsyslog, n int) []exporttest.Received {
	t.Helper()
	deadline := time.Now().Add(90 * time.Second)
	for time.Now().Before(deadline) {
		b, _ := os.ReadFile(r.Out)
		if bytes.Count(b, []byte("\n")) >= n {
			break
		}
		time.Sleep(50 * time.Millisecond)
	}
	return r.Read(t)
}

// TestSyslogRsyslog10k: rsyslog receives 10k events over TCP and 10k
// over TLS, every one in order and parsed as RFC 5424.
func TestSyslogRsyslog10k(t *testing.T) {
	r := exporttest.StartRsyslog(t, nil)
	evs := syslogEvents(t, 10_000)
	for _, tc := range []struct {
		name string
		cfg  SyslogConfig
	}{
		{"tcp", SyslogConfig{Address: r.TCPAddr, Hostname: "gw-1.example", Facility: "local4"}},
		{"tls", SyslogConfig{Address: r.TLSAddr, Transport: "tls", CAFile: r.CA, Hostname: "gw-1.example", Facility: "local4"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			before := len(r.Read(t))
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
				if g.Msg != string(ev.JSON) {
					t.Fatalf("message %d: rsyslog has\n%.300s\nwant\n%.300s", i, g.Msg, ev.JSON)
				}
				wantSev := strconv.Itoa(severityOf(ev.Severity))
				if g.Version != "1" || g.Facility != "20" || g.Severity != wantSev || g.Host != "gw-1.example" ||
					g.App != "warden" || g.MsgID != ev.Kind || g.SD != "-" || g.ProcID != "-" {
					t.Fatalf("message %d parsed as %+v (want RFC 5424, facility 20, severity %s, msgid %s)", i, g, wantSev, ev.Kind)
				}
				if ts, err := time.Parse(time.RFC3339Nano, g.Time); err != nil || !ts.Equal(ev.Time) {
					t.Fatalf("message %d: timestamp %q, want %v", i, g.Time, ev.Time)
				}
			}
		})
	}
}

// TestSyslogRsyslogRestart: rsyslog is stopped on a sink that has an
// open connection to it, events are sent while it is down, and it is
// started again; everything arrives, in order (a batch in flight may
// arrive twice). The second half is sent only once rsyslog is down (and
// the first half written), so the downtime is always seen: when both
// halves raced the restart, a busy machine could send all of them
// before the stop.
func TestSyslogRsyslogRestart(t *testing.T) {
	r := exporttest.StartRsyslog(t, nil)
	evs := syslogEvents(t, 3000)
	s, err := NewSyslogSink(SyslogConfig{Address: r.TLSAddr, Transport: "tls", CAFile: r.CA, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	half := len(evs) / 2
	if f := sendAll(t, s, evs[:half]); f != 0 {
		t.Fatalf("%d failed sends while rsyslog was up", f)
	}
	waitLines(t, r, half)
	r.Stop()
	done := make(chan int)
	go func() { done <- sendAll(t, s, evs[half:]) }()
	time.Sleep(300 * time.Millisecond)
	exporttest.StartRsyslog(t, r)
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
		fmt.Sscanf(g.Msg[strings.Index(g.Msg, `"uid":"warden-audit/`)+len(`"uid":"warden-audit/`):], "%d", &seq)
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
	s, err := NewSyslogSink(SyslogConfig{Address: fmt.Sprintf("127.0.0.1:%d", exporttest.FreePort(t)), Timeout: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	ack, err := s.Send(context.Background(), syslogEvents(t, 3))
	if err == nil || ack.Settled != 0 {
		t.Fatalf("Send to nobody: %+v %v", ack, err)
	}
}

// readFrames reads RFC 6587 octet-counted frames from c until it closes
// and returns their MSGIDs' sequence numbers, in order.
func readFrames(c net.Conn) []int {
	r := bufio.NewReader(c)
	var seqs []int
	for {
		lenStr, err := r.ReadString(' ')
		if err != nil {
			return seqs
		}
		n, err := strconv.Atoi(strings.TrimSpace(lenStr))
		if err != nil {
			return seqs
		}
		msg := make([]byte, n)
		if _, err := io.ReadFull(r, msg); err != nil {
			return seqs
		}
		var seq int
		i := bytes.Index(msg, []byte(`"uid":"warden-audit/`))
		fmt.Sscanf(string(msg[i+len(`"uid":"warden-audit/`):]), "%d", &seq)
		seqs = append(seqs, seq)
	}
}

// TestSyslogResendsWhatADeadReceiverHadNotRead: the receiver's kernel
// acknowledges a batch the receiver never reads, then the receiver
// closes. TCP called it delivered; the sink sends it again on the next
// connection, so it is not lost.
func TestSyslogResendsWhatADeadReceiverHadNotRead(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	s, err := NewSyslogSink(SyslogConfig{Address: ln.Addr().String(), Timeout: 5 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	evs := syslogEvents(t, 30)
	ctx := context.Background()

	// Connection 1: the receiver reads the first batch, then stops
	// reading; the second batch sits unread in its socket buffer.
	accepted := make(chan net.Conn, 1)
	go func() { c, _ := ln.Accept(); accepted <- c }()
	if _, err := s.Send(ctx, evs[0:10]); err != nil {
		t.Fatal(err)
	}
	c1 := <-accepted
	readFramesN(t, c1, 10)
	if _, err := s.Send(ctx, evs[10:20]); err != nil {
		t.Fatal(err) // acknowledged by the kernel: counted as delivered
	}
	c1.Close() // unread bytes: the receiver "dies" holding them

	// Connection 2: everything the receiver reads from now on.
	got := make(chan []int, 1)
	go func() {
		c, err := ln.Accept()
		if err != nil {
			got <- nil
			return
		}
		got <- readFrames(c)
	}()
	deadline := time.Now().Add(10 * time.Second)
	for {
		_, err := s.Send(ctx, evs[20:30])
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("send after the receiver came back: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	s.Close()
	seqs := <-got
	seen := map[int]bool{}
	for _, q := range seqs {
		seen[q] = true
	}
	for i := 10; i < 30; i++ {
		if !seen[i] {
			t.Fatalf("event %d never reached a receiver that read it (second connection got %v)", i, seqs)
		}
	}
	for i := 1; i < len(seqs); i++ {
		if seqs[i] < seqs[i-1] {
			t.Fatalf("out of order on the new connection: %v", seqs)
		}
	}
}

// readFramesN reads exactly n frames from c (and no byte more).
func readFramesN(t *testing.T, c net.Conn, n int) {
	t.Helper()
	r := bufio.NewReader(c)
	for i := 0; i < n; i++ {
		lenStr, err := r.ReadString(' ')
		if err != nil {
			t.Fatalf("reading frame %d: %v", i, err)
		}
		k, _ := strconv.Atoi(strings.TrimSpace(lenStr))
		msg := make([]byte, k)
		if _, err := io.ReadFull(r, msg); err != nil {
			t.Fatal(err)
		}
	}
	if r.Buffered() > 0 {
		t.Fatalf("the first batch came with %d more bytes", r.Buffered())
	}
}

// TestSyslogResendWindowBounded: the resend window keeps the newest
// whole batches within ResendWindowBytes (at least the newest one), and
// -1 keeps none.
func TestSyslogResendWindowBounded(t *testing.T) {
	frame := func(n int) []byte { return bytes.Repeat([]byte{'x'}, n) }
	for _, tc := range []struct {
		window int64
		sizes  []int
		want   []int // sizes kept, oldest first
	}{
		{100, []int{40, 40, 40}, []int{40, 40}},
		{100, []int{40, 60}, []int{40, 60}},
		{100, []int{150}, []int{150}},
		{100, []int{30, 150}, []int{150}},
		{-1, []int{10, 10}, nil},
	} {
		s, err := NewSyslogSink(SyslogConfig{Address: "127.0.0.1:1", ResendWindowBytes: tc.window})
		if err != nil {
			t.Fatal(err)
		}
		for _, n := range tc.sizes {
			s.remember(frame(n))
		}
		var got []int
		var total int64
		for _, f := range s.sent {
			got = append(got, len(f))
			total += int64(len(f))
		}
		if fmt.Sprint(got) != fmt.Sprint(tc.want) || total != s.sentBytes {
			t.Errorf("window %d after %v: kept %v (%d bytes counted), want %v", tc.window, tc.sizes, got, s.sentBytes, tc.want)
		}
	}
	if _, err := NewSyslogSink(SyslogConfig{Address: "127.0.0.1:1", ResendWindowBytes: -2}); err == nil || !strings.Contains(err.Error(), "resend_window_bytes") {
		t.Fatalf("resend_window_bytes -2: %v", err)
	}
}
