package export

import (
	"context"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/wardenhq/warden/internal/export/exporttest"
)

// natsURL returns the JetStream server for tests: WARDEN_TEST_NATS
// (required to answer when set), else nats://127.0.0.1:4222 if it
// answers, else the test is skipped.
func natsURL(t *testing.T) string {
	t.Helper()
	u := os.Getenv("WARDEN_TEST_NATS")
	required := u != ""
	if u == "" {
		u = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(u, nats.Timeout(3*time.Second))
	if err != nil {
		if required {
			t.Fatalf("WARDEN_TEST_NATS=%s is set but the server does not answer: %v", u, err)
		}
		t.Skipf("no NATS server at %s (set WARDEN_TEST_NATS to a JetStream server); skipping: %v", u, err)
	}
	nc.Close()
	return u
}

// testStream creates a unique stream and returns its name and subject
// prefix; it is deleted when the test ends.
func testStream(t *testing.T, url string) (string, string) {
	t.Helper()
	id := fmt.Sprintf("%d_%d", time.Now().UnixNano(), rand.Int64())
	name, prefix := "WARDEN_TEST_"+id, "wardentest."+id
	nc, err := nats.Connect(url)
	if err != nil {
		t.Fatal(err)
	}
	js, _ := jetstream.New(nc)
	t.Cleanup(func() {
		js.DeleteStream(context.Background(), name)
		nc.Close()
	})
	return name, prefix
}

// streamUIDs returns the Nats-Msg-Id headers of the stream's messages,
// in stream order.
func streamUIDs(t *testing.T, url, stream string) []string {
	t.Helper()
	var out []string
	for _, m := range exporttest.StreamMessages(t, url, stream) {
		out = append(out, m.Header.Get("Nats-Msg-Id"))
	}
	return out
}

func TestNATSDelivers(t *testing.T) {
	url := natsURL(t)
	stream, prefix := testStream(t, url)
	l := newMemLog(t)
	l.fill(t, 500, 100)
	s, err := NewNATSSink(NATSConfig{URL: url, Subject: prefix + ".{kind}", Stream: stream})
	if err != nil {
		t.Fatal(err)
	}
	startExporter(t, l, target(t.TempDir(), "nats", s))
	waitFor(t, "every event in the stream", func() bool { return len(streamUIDs(t, url, stream)) >= 505 })
	checkUIDs(t, l, streamUIDs(t, url, stream), false)

	// Subjects carry the kind.
	nc, _ := nats.Connect(url)
	defer nc.Close()
	js, _ := jetstream.New(nc)
	st, _ := js.Stream(context.Background(), stream)
	m, err := st.GetLastMsgForSubject(context.Background(), prefix+".request.denied")
	if err != nil || !strings.Contains(string(m.Data), `"class_uid":6003`) || m.Header.Get("Warden-Kind") != "request.denied" {
		t.Fatalf("last request.denied message: %v %v", m, err)
	}
}

// TestNATSOutage: the connection to NATS is cut while events flow and
// restored; every event is in the stream once, in order (re-sends are
// dropped by Nats-Msg-Id).
func TestNATSOutage(t *testing.T) {
	url := natsURL(t)
	stream, prefix := testStream(t, url)
	host := strings.TrimPrefix(url, "nats://")
	if _, _, err := net.SplitHostPort(host); err != nil {
		t.Skipf("cannot proxy %s", url)
	}
	p := exporttest.NewTCPProxy(t, host)
	l := newMemLog(t)
	s, err := NewNATSSink(NATSConfig{URL: "nats://" + p.Addr, Subject: prefix + ".{kind}", Stream: stream, Timeout: 2 * time.Second})
	if err != nil {
		t.Fatal(err)
	}
	tg := target(t.TempDir(), "nats", s)
	tg.BackoffMax = 200 * time.Millisecond
	h := startExporter(t, l, tg)
	stopLoad := l.steadyLoad(t) // a steady load while the sink is down
	waitFor(t, "a first delivery", func() bool { return h.x.Status()[0].Delivered > 100 })
	p.Cut()
	// The outage lasts until a delivery has failed: a batch published
	// while NATS is away waits in the client's reconnect buffer, and if
	// the connection is back before its acknowledgements time out (2 s)
	// it is delivered without a failure. A fixed 2 s cut left that to
	// timing (on a loaded machine the exporter's first send can start
	// late enough into the cut to survive it), and the test then failed
	// with "the outage caused no failure".
	time.Sleep(2 * time.Second)
	waitFor(t, "a failed delivery while NATS is cut off", func() bool { return h.x.Status()[0].Failed > 0 })
	p.Restore()
	time.Sleep(500 * time.Millisecond)
	stopLoad()
	l.checkpoint(t)
	n, _ := l.Size(context.Background())
	waitFor(t, "catch-up", func() bool { return h.x.Status()[0].Cursor == n && h.x.Status()[0].LagEntries == 0 })
	// The cursor counts entries: it can reach n before the checkpoint
	// at n (made after the load stopped) is exported. Wait for that too.
	final := fmt.Sprintf("/checkpoint/%d", n)
	waitFor(t, "the final checkpoint in the stream", func() bool {
		uids := streamUIDs(t, url, stream)
		return len(uids) > 0 && strings.HasSuffix(uids[len(uids)-1], final)
	})
	if h.x.Status()[0].Failed == 0 {
		t.Fatal("the outage caused no failure")
	}
	checkUIDs(t, l, streamUIDs(t, url, stream), false)
}

// TestNATSSendSettles drives Send directly against streams that accept,
// refuse for good, or do not exist: what is settled, what is rejected
// (dead-lettered by the exporter) and what is an error to retry.
func TestNATSSendSettles(t *testing.T) {
	url := natsURL(t)
	evs := syslogEvents(t, 40)
	big := slices.Clone(evs)
	for i := range big {
		big[i].UID = big[i].UID + "-big"
	}
	// Event 7 is padded past the stream's maximum message size.
	big[7].JSON = append(slices.Clone(big[7].JSON[:len(big[7].JSON)-1]), []byte(`,"pad":"`+strings.Repeat("x", 9000)+`"}`)...)
	for _, c := range []struct {
		name       string
		maxMsgSize int32 // 0: no stream is created
		batch      []Event
		wantErr    bool
		settled    int
		rejected   []int
		stored     int
	}{
		{name: "stored", maxMsgSize: -1, batch: evs, settled: 40, stored: 40},
		{name: "one too large for the stream", maxMsgSize: 8192, batch: big, settled: 40, rejected: []int{7}, stored: 39},
		{name: "no stream", batch: evs, wantErr: true, settled: 0},
	} {
		t.Run(c.name, func(t *testing.T) {
			stream, prefix := testStream(t, url)
			if c.maxMsgSize != 0 {
				nc, err := nats.Connect(url)
				if err != nil {
					t.Fatal(err)
				}
				defer nc.Close()
				js, _ := jetstream.New(nc)
				if _, err := js.CreateStream(context.Background(), jetstream.StreamConfig{Name: stream, Subjects: []string{prefix + ".>"}, MaxMsgSize: c.maxMsgSize, Duplicates: time.Minute}); err != nil {
					t.Fatal(err)
				}
			}
			s, err := NewNATSSink(NATSConfig{URL: url, Subject: prefix + ".{kind}", Timeout: 2 * time.Second})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			ack, err := s.Send(context.Background(), c.batch)
			if (err != nil) != c.wantErr {
				t.Fatalf("Send error %v, want error %v", err, c.wantErr)
			}
			var rejected []int
			for _, r := range ack.Rejected {
				rejected = append(rejected, r.Index)
				if !strings.Contains(r.Reason, "JetStream refused") {
					t.Errorf("rejection reason %q", r.Reason)
				}
			}
			if ack.Settled != c.settled || !slices.Equal(rejected, c.rejected) {
				t.Fatalf("settled %d rejected %v, want %d %v", ack.Settled, rejected, c.settled, c.rejected)
			}
			if c.maxMsgSize == 0 {
				return
			}
			// A re-send of the whole batch is settled again and stores
			// nothing new (Nats-Msg-Id), and every answer of the first
			// Send was consumed by it, none by the second.
			if ack2, err := s.Send(context.Background(), c.batch); err != nil || ack2.Settled != c.settled {
				t.Fatalf("re-send: %+v %v", ack2, err)
			}
			if got := streamUIDs(t, url, stream); len(got) != c.stored {
				t.Fatalf("stream holds %d events, want %d", len(got), c.stored)
			}
		})
	}
}

func TestNATSPubAck(t *testing.T) {
	status := func(code, desc string) *nats.Msg {
		return &nats.Msg{Header: nats.Header{"Status": {code}, "Description": {desc}}}
	}
	for _, c := range []struct {
		name    string
		m       *nats.Msg
		refused bool
		wantErr bool
		slow    bool // read by decoding the JSON
	}{
		{name: "stored", m: &nats.Msg{Data: []byte(`{"stream":"S","seq":12}`)}},
		{name: "stored, as nats-server 2.9 writes it", m: &nats.Msg{Data: []byte(`{"stream":"S", "seq":1}`)}},
		{name: "duplicate, as nats-server 2.9 writes it", m: &nats.Msg{Data: []byte(`{"stream":"S", "seq":1,"duplicate": true}`)}},
		{name: "sequence 0", m: &nats.Msg{Data: []byte(`{"stream":"S", "seq":0}`)}, wantErr: true},
		{name: "duplicate", m: &nats.Msg{Data: []byte(`{"stream":"S","seq":12,"duplicate":true}`)}},
		{name: "domain, other order", m: &nats.Msg{Data: []byte(`{"domain":"hub","seq":3,"stream":"S"}`)}, slow: true},
		{name: "stream named error", m: &nats.Msg{Data: []byte(`{"stream":"error","seq":3}`)}, slow: true},
		{name: "too large", m: &nats.Msg{Data: []byte(`{"error":{"code":400,"err_code":10054,"description":"message size exceeds maximum allowed"},"stream":"S","seq":0}`)}, refused: true},
		{name: "other JetStream error", m: &nats.Msg{Data: []byte(`{"error":{"code":503,"err_code":10077,"description":"maximum messages exceeded"}}`)}, wantErr: true},
		{name: "error after a stream", m: &nats.Msg{Data: []byte(`{"stream":"S","error":{"code":500,"err_code":10001,"description":"x"}}`)}, wantErr: true},
		{name: "no responders", m: status("503", ""), wantErr: true},
		{name: "other status", m: status("408", "Request Timeout"), wantErr: true},
		{name: "empty", m: &nats.Msg{}, wantErr: true},
		{name: "not JSON", m: &nats.Msg{Data: []byte(`+OK`)}, wantErr: true},
		{name: "no sequence", m: &nats.Msg{Data: []byte(`{"stream":"S"}`)}, wantErr: true},
		{name: "truncated", m: &nats.Msg{Data: []byte(`{"stream":"S","seq":`)}, wantErr: true},
	} {
		t.Run(c.name, func(t *testing.T) {
			reason, err := natsPubAck(c.m)
			if (err != nil) != c.wantErr || (reason != "") != c.refused {
				t.Fatalf("natsPubAck = %q, %v; want refused %v, error %v", reason, err, c.refused, c.wantErr)
			}
			// A stored event is read without decoding the JSON (the
			// acknowledgement of every event goes through here).
			if !c.wantErr && !c.refused && !c.slow {
				if n := testing.AllocsPerRun(10, func() { natsPubAck(c.m) }); n != 0 {
					t.Fatalf("%v allocations reading a publish acknowledgement; want none", n)
				}
			}
		})
	}
}

func TestNATSConfigErrors(t *testing.T) {
	for _, c := range []NATSConfig{{}, {URL: "nats://x", Subject: "a.*"}, {URL: "nats://x", Subject: "a b"}, {URL: "nats://x", CertFile: "c"}} {
		if _, err := NewNATSSink(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
	s, _ := NewNATSSink(NATSConfig{URL: "nats://u:secretpw@127.0.0.1:1", Timeout: 200 * time.Millisecond})
	_, err := s.Send(context.Background(), syslogEvents(t, 1))
	if err == nil || strings.Contains(err.Error(), "secretpw") {
		t.Fatalf("connect error %v", err)
	}
}

// BenchmarkNATSSendCPU is the NATS sink's own CPU per event (client
// side: publish, acknowledgement handling), batches of 500 mapped
// request events. Needs NATS at nats://127.0.0.1:4222.
func BenchmarkNATSSendCPU(b *testing.B) {
	url, stream, subject := benchJetStream(b)
	ns, err := NewNATSSink(NATSConfig{URL: url, Subject: subject + ".{kind}", Stream: stream})
	if err != nil {
		b.Fatal(err)
	}
	defer ns.Close()
	e, data := benchEntry(b)
	m := Mapper{Origin: "warden-audit", ProductVersion: "test"}
	ev, err := m.Entry(e, data, nil)
	if err != nil {
		b.Fatal(err)
	}
	batch := make([]Event, 500)
	seq := int64(0)
	ctx := context.Background()
	b.ResetTimer()
	t := startCPU()
	for n := 0; n < b.N; n += len(batch) {
		for i := range batch {
			batch[i] = ev
			batch[i].UID = EntryUID("warden-audit", seq)
			seq++
		}
		if _, err := ns.Send(ctx, batch); err != nil {
			b.Fatal(err)
		}
	}
	t.report(b, int(seq), "event")
}
