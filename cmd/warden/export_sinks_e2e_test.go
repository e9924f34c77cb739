package main

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"
	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/export/exporttest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// verifyReceived checks one receiver's events (in arrival order) as an
// exported stream: contiguous from entry 0 to the log's last entry, in
// order (a re-sent range is checked against the first copy), each entry
// bound to a signed checkpoint. It returns the report.
func verifyReceived(t *testing.T, name string, events [][]byte, v note.Verifier, size int64) export.StreamReport {
	t.Helper()
	var buf bytes.Buffer
	for _, ev := range events {
		buf.Write(ev)
		buf.WriteByte('\n')
	}
	rep, err := export.VerifyStream(&buf, v)
	if err != nil {
		t.Fatalf("%s: the received stream does not verify: %v", name, err)
	}
	if rep.First != 0 || rep.Last != size-1 || rep.Bound != size || rep.UnboundTail != 0 {
		t.Fatalf("%s: received %d entry events (%d..%d, %d bound) for a log of %d entries", name, rep.Events, rep.First, rep.Last, rep.Bound, size)
	}
	return rep
}

// waitExported waits until every sink's cursor (in export.db) has reached
// the log's size while the gateway runs.
func waitExported(t *testing.T, dataDir string, sinks []string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	cs, err := sqlite.OpenExportCursors(ctx, filepath.Join(dataDir, "export.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer cs.Close()
	deadline := time.Now().Add(timeout)
	for {
		size := storeSize(t, dataDir)
		pos, err := cs.Positions(ctx)
		if err != nil {
			t.Fatal(err)
		}
		behind := []string{}
		for _, s := range sinks {
			if pos[s] < size {
				behind = append(behind, fmt.Sprintf("%s at %d", s, pos[s]))
			}
		}
		if len(behind) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("the sinks did not catch up with the log of %d entries within %s: %s", size, timeout, strings.Join(behind, ", "))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// rsyslogMessages returns the messages rsyslog parsed from app, in order.
func rsyslogMessages(t *testing.T, r *exporttest.Rsyslog, app string) []exporttest.Received {
	t.Helper()
	var out []exporttest.Received
	for _, g := range r.Read(t) {
		if g.App == app {
			out = append(out, g)
		}
	}
	return out
}

// TestExportRsyslog10kRequests: a gateway serves 10,000 requests while
// exporting to a real rsyslogd over TCP and over TLS (two sinks); rsyslog
// parses every message as RFC 5424 and has every event of the log, in
// order, none twice.
func TestExportRsyslog10kRequests(t *testing.T) {
	r := exporttest.StartRsyslog(t, nil)
	dir := t.TempDir()
	cfgPath, gwAddr, adminAddr := exportGateway(t, dir, fmt.Sprintf(`    - name: syslog-tcp
      type: syslog
      syslog: {address: "%s", app_name: warden-tcp, hostname: gw-1.example, facility: local4}
    - name: syslog-tls
      type: syslog
      syslog: {address: "%s", transport: tls, ca_file: %s, app_name: warden-tls, hostname: gw-1.example, facility: local4}
`, r.TCPAddr, r.TLSAddr, r.CA), "")
	cmd := startServe(t, cfgPath, adminAddr)
	requests := 10_000
	if testing.Short() {
		requests = 1000
	}
	var next, failed atomic.Int64
	var wg sync.WaitGroup
	client := &http.Client{Timeout: 10 * time.Second}
	for w := 0; w < 16; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for next.Add(1) <= int64(requests) {
				resp, err := client.Post("http://"+gwAddr+"/v1/chat/completions", "application/json", strings.NewReader(`{"model":"m"}`))
				if err != nil {
					failed.Add(1)
					continue
				}
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 {
					failed.Add(1)
				}
			}
		}()
	}
	wg.Wait()
	data := filepath.Join(dir, "data")
	waitExported(t, data, []string{"syslog-tcp", "syslog-tls"}, 3*time.Minute)
	stopServe(t, cmd)
	if failed.Load() != 0 {
		t.Fatalf("%d of %d requests failed", failed.Load(), requests)
	}
	size := storeSize(t, data)
	v, err := audit.LoadVerifier(filepath.Join(data, "keys", "audit.verifier"))
	if err != nil {
		t.Fatal(err)
	}
	for _, app := range []string{"warden-tcp", "warden-tls"} {
		var msgs []exporttest.Received
		deadline := time.Now().Add(2 * time.Minute)
		for {
			msgs = rsyslogMessages(t, r, app)
			if int64(len(msgs)) >= size || time.Now().After(deadline) {
				break
			}
			time.Sleep(100 * time.Millisecond)
		}
		events := make([][]byte, len(msgs))
		for i, g := range msgs {
			var ev struct {
				Unmapped struct {
					Warden struct{ Kind string } `json:"warden"`
				} `json:"unmapped"`
			}
			if err := json.Unmarshal([]byte(g.Msg), &ev); err != nil {
				t.Fatalf("%s message %d is not one OCSF JSON event: %v\n%.300s", app, i, err, g.Msg)
			}
			if _, err := time.Parse(time.RFC3339Nano, g.Time); g.Version != "1" || g.Facility != "20" || g.Host != "gw-1.example" ||
				g.MsgID != ev.Unmapped.Warden.Kind || g.SD != "-" || err != nil {
				t.Fatalf("%s message %d not parsed as RFC 5424 with our header: %+v", app, i, g)
			}
			events[i] = []byte(g.Msg)
		}
		rep := verifyReceived(t, app, events, v, size)
		if rep.Duplicates != 0 {
			t.Errorf("%s: %d events arrived twice without any outage", app, rep.Duplicates)
		}
		t.Logf("%s: %d requests, log of %d entries: rsyslog parsed %d messages (%d checkpoints), in order", app, requests, size, len(msgs), rep.Checkpoints)
	}
}

// outageDuration is how long the sinks are down in TestExportOutage:
// WARDEN_TEST_EXPORT_OUTAGE (a Go duration), 60 s by default, 5 s with
// -short.
func outageDuration(t *testing.T) time.Duration {
	if s := os.Getenv("WARDEN_TEST_EXPORT_OUTAGE"); s != "" {
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("WARDEN_TEST_EXPORT_OUTAGE: %v", err)
		}
		return d
	}
	if testing.Short() {
		return 5 * time.Second
	}
	return 60 * time.Second
}

// hecReceiver is a Splunk HTTP Event Collector: it keeps the events of
// every accepted request in arrival order; while down it answers 503.
type hecReceiver struct {
	mu      sync.Mutex
	events  [][]byte
	down    atomic.Bool
	refused atomic.Int64
}

func (h *hecReceiver) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/services/collector/event" || r.Header.Get("Authorization") != "Splunk test-token" {
		http.Error(w, `{"text":"Invalid token","code":4}`, http.StatusForbidden)
		return
	}
	if h.down.Load() {
		h.refused.Add(1)
		http.Error(w, `{"text":"Server is busy","code":9}`, http.StatusServiceUnavailable)
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			http.Error(w, `{"text":"bad gzip","code":6}`, http.StatusBadRequest)
			return
		}
		body = zr
	}
	dec := json.NewDecoder(body)
	var evs [][]byte
	for {
		var he struct {
			Event json.RawMessage `json:"event"`
		}
		if err := dec.Decode(&he); errors.Is(err, io.EOF) {
			break
		} else if err != nil {
			http.Error(w, `{"text":"Invalid data format","code":6}`, http.StatusBadRequest)
			return
		}
		evs = append(evs, he.Event)
	}
	h.mu.Lock()
	h.events = append(h.events, evs...)
	h.mu.Unlock()
	_, _ = w.Write([]byte(`{"text":"Success","code":0}`))
}

// natsEvents reads every message of a JetStream stream in order.
func natsEvents(t *testing.T, url, stream string) (events [][]byte, ids []string) {
	t.Helper()
	for _, m := range exporttest.StreamMessages(t, url, stream) {
		events = append(events, m.Data)
		ids = append(ids, m.Header.Get("Nats-Msg-Id"))
	}
	return events, ids
}

// kafkaEvents consumes a topic from the start until it has want records
// (or 60 s pass) and returns their values in offset order (one partition:
// the sink keys every record by the log origin).
func kafkaEvents(t *testing.T, c *kfake.Cluster, topic string, want int) [][]byte {
	t.Helper()
	cl, err := kgo.NewClient(kgo.SeedBrokers(c.ListenAddrs()...), kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	var out [][]byte
	parts := map[int32]bool{}
	for len(out) < want && ctx.Err() == nil {
		cl.PollFetches(ctx).EachRecord(func(r *kgo.Record) {
			out = append(out, r.Value)
			parts[r.Partition] = true
		})
	}
	if len(parts) > 1 {
		t.Fatalf("kafka: events spread over %d partitions", len(parts))
	}
	return out
}

// TestExportOutage: one gateway exports to every network sink — syslog
// (a real rsyslogd behind a proxy), Splunk HEC, NATS JetStream (the real
// server behind a proxy), Kafka (kfake) and a webhook — while serving a
// steady 100 requests/s. Every sink is then down for 60 s (proxies cut,
// HEC and webhook answering 503, Kafka refusing produce requests) under
// the same load. Afterwards every sink has every event, in order, none
// lost; NATS has none twice; and the gateway answered every request
// during the outage, as did a gateway without export loaded the same way
// at the same time (latencies of both are logged side by side: timing
// on a shared machine is not asserted).
func TestExportOutage(t *testing.T) {
	natsURL := os.Getenv("WARDEN_TEST_NATS")
	if natsURL == "" {
		natsURL = "nats://127.0.0.1:4222"
	}
	nc, err := nats.Connect(natsURL, nats.Timeout(3*time.Second))
	if err != nil {
		if os.Getenv("WARDEN_TEST_NATS") != "" {
			t.Fatalf("WARDEN_TEST_NATS=%s does not answer: %v", natsURL, err)
		}
		t.Skipf("no NATS JetStream at %s (set WARDEN_TEST_NATS); skipping: %v", natsURL, err)
	}
	nc.Close()
	rs := exporttest.StartRsyslog(t, nil)
	syslogProxy := exporttest.NewTCPProxy(t, rs.TCPAddr)
	natsProxy := exporttest.NewTCPProxy(t, strings.TrimPrefix(natsURL, "nats://"))
	stream := "WARDEN_OUTAGE_" + strconv.FormatInt(time.Now().UnixNano(), 36)
	subject := "wardenoutage." + strings.ToLower(stream[len("WARDEN_OUTAGE_"):])
	t.Cleanup(func() {
		if nc, err := nats.Connect(natsURL); err == nil {
			js, _ := jetstream.New(nc)
			_ = js.DeleteStream(context.Background(), stream)
			nc.Close()
		}
	})
	hec := &hecReceiver{}
	hecSrv := httptest.NewServer(hec)
	defer hecSrv.Close()
	hook := &webhookReceiver{}
	hookSrv := httptest.NewServer(hook)
	defer hookSrv.Close()
	kc, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, "warden-ocsf"))
	if err != nil {
		t.Fatal(err)
	}
	defer kc.Close()
	var kafkaDown atomic.Bool
	var kafkaRefused atomic.Int64
	kc.ControlKey(int16(kmsg.Produce), func(kmsg.Request) (kmsg.Response, error, bool) {
		kc.KeepControl()
		if kafkaDown.Load() {
			kafkaRefused.Add(1)
			return nil, errors.New("broker down"), true
		}
		return nil, nil, false
	})

	dir := t.TempDir()
	common := "      batch_wait: 50ms\n      backoff_max: 2s\n"
	sinks := fmt.Sprintf(`    - name: syslog
      type: syslog
%s      syslog: {address: "%s", app_name: warden-outage, timeout: 2s}
    - name: hec
      type: splunk_hec
%s      splunk_hec: {url: "%s", token: test-token, timeout: 2s}
    - name: nats
      type: nats
%s      nats: {url: "nats://%s", subject: "%s.{kind}", stream: %s, timeout: 2s}
    - name: kafka
      type: kafka
%s      kafka: {brokers: ["%s"], topic: warden-ocsf}
    - name: webhook
      type: webhook
%s      webhook: {url: "%s", timeout: 2s}
`, common, syslogProxy.Addr, common, hecSrv.URL, common, natsProxy.Addr, subject, stream, common, kc.ListenAddrs()[0], common, hookSrv.URL)
	names := []string{"syslog", "hec", "nats", "kafka", "webhook"}
	cfgPath, gwAddr, adminAddr := exportGateway(t, dir, sinks, "")
	cmd := startServe(t, cfgPath, adminAddr)
	data := filepath.Join(dir, "data")

	const rate = 100
	warm := steadyLoad(gwAddr, rate)
	time.Sleep(3 * time.Second)
	warm()
	before := steadyLoad(gwAddr, rate)
	time.Sleep(10 * time.Second)
	rBefore := before()

	// A gateway without export, loaded the same way at the same time,
	// is the reference for "unaffected".
	plainDir := t.TempDir()
	plainCfg, plainGW, plainAdmin := exportGateway(t, plainDir, "", "")
	plain := startServe(t, plainCfg, plainAdmin)
	defer stopServe(t, plain)

	outage := outageDuration(t)
	reference := steadyLoad(plainGW, rate)
	during := steadyLoad(gwAddr, rate)
	syslogProxy.Cut()
	natsProxy.Cut()
	hec.down.Store(true)
	hook.down.Store(true)
	kafkaDown.Store(true)
	time.Sleep(outage)
	rDuring := during()
	rReference := reference()
	syslogProxy.Restore()
	natsProxy.Restore()
	hec.down.Store(false)
	hook.down.Store(false)
	kafkaDown.Store(false)
	after := steadyLoad(gwAddr, rate)
	time.Sleep(3 * time.Second)
	rAfter := after()

	t.Logf("gateway with every sink up:   %s", rBefore.summary())
	t.Logf("gateway with every sink down (%s): %s", outage, rDuring.summary())
	t.Logf("gateway after the outage:      %s", rAfter.summary())
	t.Logf("meanwhile, a gateway without export: %s", rReference.summary())
	for name, r := range map[string]*loadResult{"before": rBefore, "during": rDuring, "after": rAfter, "without export, during": rReference} {
		if r.failed.Load() != 0 || r.errors.Load() != 0 {
			t.Errorf("%s the outage the gateway failed %d requests (%d transport errors): the data path must not depend on a sink", name, r.failed.Load(), r.errors.Load())
		}
	}
	if rDuring.ok.Load() < int64(outage.Seconds()*rate*0.5) {
		t.Errorf("only %d requests answered during %s at %d/s: too little load to show anything", rDuring.ok.Load(), outage, rate)
	}

	waitExported(t, data, names, 5*time.Minute)
	stopServe(t, cmd)
	size := storeSize(t, data)
	v, err := audit.LoadVerifier(filepath.Join(data, "keys", "audit.verifier"))
	if err != nil {
		t.Fatal(err)
	}
	if kafkaRefused.Load() == 0 || hec.refused.Load() == 0 || hook.refused.Load() == 0 {
		t.Fatalf("the outage was not felt: kafka refused %d produce requests, HEC %d posts, the webhook %d", kafkaRefused.Load(), hec.refused.Load(), hook.refused.Load())
	}

	var syslogEvents [][]byte
	deadline := time.Now().Add(2 * time.Minute)
	for {
		syslogEvents = syslogEvents[:0]
		for _, g := range rsyslogMessages(t, rs, "warden-outage") {
			syslogEvents = append(syslogEvents, []byte(g.Msg))
		}
		if int64(len(syslogEvents)) >= size || time.Now().After(deadline) {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	natsEvs, natsIDs := natsEvents(t, natsURL, stream)
	hec.mu.Lock()
	hecEvs := hec.events
	hec.mu.Unlock()
	got := map[string][][]byte{
		"syslog": syslogEvents, "hec": hecEvs, "nats": natsEvs,
		"kafka": kafkaEvents(t, kc, "warden-ocsf", int(size)), "webhook": bytes.Split(bytes.TrimSuffix(hook.stream(), []byte("\n")), []byte("\n")),
	}
	for _, name := range names {
		rep := verifyReceived(t, name, got[name], v, size)
		t.Logf("%s: %d events for %d entries and %d checkpoints (%d re-sent, de-duplicated by uid)", name, len(got[name]), size, rep.Checkpoints, rep.Duplicates)
	}
	seen := map[string]bool{}
	for _, id := range natsIDs {
		if seen[id] {
			t.Errorf("nats: event %s is in the stream twice", id)
		}
		seen[id] = true
	}
}
