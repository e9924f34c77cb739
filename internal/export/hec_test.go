package export

import (
	"bytes"
	"compress/gzip"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeHEC behaves like Splunk's HTTP Event Collector: token check,
// gzip, concatenated JSON events, error codes, 429/503 with Retry-After,
// the first malformed event reported by number, and indexer
// acknowledgement per channel.
type fakeHEC struct {
	t     *testing.T
	token string
	ack   bool

	mu        sync.Mutex
	indexed   []string // metadata.uid of the events, in the order indexed
	meta      []hecEvent
	busy      int // answer this many requests with 503/429
	pending   map[string]map[int64][]string
	nextAck   int64
	ackPolls  int  // polls before an ack turns true
	neverAck  bool // never confirm (the sink must re-send)
	requests  int
	gzipped   int
	badMarker string
}

func newFakeHEC(t *testing.T, ack bool) (*fakeHEC, *httptest.Server) {
	h := &fakeHEC{t: t, token: "s3cret-token", ack: ack, pending: map[string]map[int64][]string{}}
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)
	return h, srv
}

func (h *fakeHEC) reply(w http.ResponseWriter, status int, text string, code int, extra map[string]any) {
	m := map[string]any{"text": text, "code": code}
	for k, v := range extra {
		m[k] = v
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(m)
}

func (h *fakeHEC) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.requests++
	if r.Method != http.MethodPost {
		h.reply(w, 405, "Method not allowed", 0, nil)
		return
	}
	if r.Header.Get("Authorization") != "Splunk "+h.token {
		h.reply(w, 401, "Invalid authorization", 3, nil)
		return
	}
	ch := r.Header.Get("X-Splunk-Request-Channel")
	if h.ack && ch == "" {
		h.reply(w, 400, "Data channel is missing", 10, nil)
		return
	}
	switch r.URL.Path {
	case "/services/collector/ack":
		var req struct{ Acks []int64 }
		json.NewDecoder(r.Body).Decode(&req)
		acks := map[string]bool{}
		for _, id := range req.Acks {
			done := false
			if evs, ok := h.pending[ch][id]; ok && !h.neverAck {
				if h.ackPolls > 0 {
					h.ackPolls--
				} else {
					h.indexed = append(h.indexed, evs...)
					delete(h.pending[ch], id)
					done = true
				}
			}
			acks[strconv.FormatInt(id, 10)] = done
		}
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(map[string]any{"acks": acks})
		return
	case "/services/collector/event":
	default:
		h.reply(w, 404, "Not Found", 404, nil)
		return
	}
	if h.busy > 0 {
		h.busy--
		w.Header().Set("Retry-After", "1")
		if h.busy%2 == 0 {
			h.reply(w, 503, "Server is busy", 9, nil)
		} else {
			h.reply(w, 429, "Too many requests", 9, nil)
		}
		return
	}
	var body io.Reader = r.Body
	if r.Header.Get("Content-Encoding") == "gzip" {
		zr, err := gzip.NewReader(r.Body)
		if err != nil {
			h.reply(w, 400, "Invalid data format", 6, nil)
			return
		}
		body = zr
		h.gzipped++
	}
	dec := json.NewDecoder(body)
	var batch []string
	for n := 0; ; n++ {
		var he hecEvent
		err := dec.Decode(&he)
		if err == io.EOF {
			break
		}
		if err != nil || len(he.Event) == 0 || he.Time == "" || (h.badMarker != "" && bytes.Contains(he.Event, []byte(h.badMarker))) {
			// Splunk indexes the events before the bad one.
			h.indexed = append(h.indexed, batch...)
			h.reply(w, 400, "Invalid data format", 6, map[string]any{"invalid-event-number": n})
			return
		}
		var m struct{ Metadata struct{ UID string } }
		json.Unmarshal(he.Event, &m)
		batch = append(batch, m.Metadata.UID)
		h.meta = append(h.meta, he)
	}
	if len(batch) == 0 {
		h.reply(w, 400, "No data", 5, nil)
		return
	}
	if h.ack {
		id := h.nextAck
		h.nextAck++
		if h.pending[ch] == nil {
			h.pending[ch] = map[int64][]string{}
		}
		h.pending[ch][id] = batch
		h.reply(w, 200, "Success", 0, map[string]any{"ackId": id})
		return
	}
	h.indexed = append(h.indexed, batch...)
	h.reply(w, 200, "Success", 0, nil)
}

func (h *fakeHEC) uids() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.indexed...)
}

func hecTarget(t *testing.T, cfg HECConfig) Target {
	s, err := NewHECSink(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return target(t.TempDir(), "splunk", s)
}

// checkUIDs asserts uids are every entry and checkpoint of l, in order,
// once (after dropping immediate re-sends when dupes is true).
func checkUIDs(t *testing.T, l *memLog, uids []string, dupes bool) {
	t.Helper()
	var want []string
	l.mu.Lock()
	for _, it := range l.items {
		if it.Checkpoint != nil {
			want = append(want, CheckpointUID("warden-audit", it.Checkpoint.Size))
		} else {
			want = append(want, EntryUID("warden-audit", it.Entry.Seq))
		}
	}
	l.mu.Unlock()
	if dupes {
		seen := map[string]bool{}
		var d []string
		for _, u := range uids {
			if !seen[u] {
				seen[u] = true
				d = append(d, u)
			}
		}
		uids = d
	}
	if strings.Join(uids, ",") != strings.Join(want, ",") {
		t.Fatalf("receiver has %d events, want %d in order:\n got %.400v\nwant %.400v", len(uids), len(want), uids, want)
	}
}

func TestHECDelivers(t *testing.T) {
	h, srv := newFakeHEC(t, false)
	l := newMemLog(t)
	l.fill(t, 400, 100)
	tg := hecTarget(t, HECConfig{URL: srv.URL, Token: h.token, Index: "security", Host: "gw-1"})
	startExporter(t, l, tg)
	waitFor(t, "every event", func() bool { return len(h.uids()) == 404 })
	checkUIDs(t, l, h.uids(), false)
	h.mu.Lock()
	defer h.mu.Unlock()
	if h.gzipped != h.requests || h.requests < 8 {
		t.Fatalf("%d of %d requests gzipped (batching: want >= 8 requests of <= 50)", h.gzipped, h.requests)
	}
	m := h.meta[0]
	if m.Index != "security" || m.Host != "gw-1" || m.Sourcetype != "ocsf:warden" {
		t.Fatalf("HEC metadata %+v", m)
	}
	if _, err := strconv.ParseFloat(string(m.Time), 64); err != nil || !strings.Contains(string(m.Time), ".") {
		t.Fatalf("HEC time %q", m.Time)
	}
}

// TestHECBusyAndBadToken: 429/503 and a wrong token are retried (with the
// Retry-After hint); nothing is lost or dead-lettered.
func TestHECBusyAndBadToken(t *testing.T) {
	h, srv := newFakeHEC(t, false)
	h.busy = 4
	l := newMemLog(t)
	l.fill(t, 120, 60)
	tg := hecTarget(t, HECConfig{URL: srv.URL, Token: h.token, Gzip: new(bool)})
	tg.BackoffMax = 2 * time.Second
	x := startExporter(t, l, tg)
	waitFor(t, "every event", func() bool { return len(h.uids()) == 122 })
	checkUIDs(t, l, h.uids(), false)
	if st := x.x.Status()[0]; st.Failed < 4 || !strings.Contains(st.LastError, "Server is busy") && !strings.Contains(st.LastError, "Too many requests") {
		t.Fatalf("status %+v", st)
	}
	// A wrong token: retried, never dropped, never logged.
	l2 := newMemLog(t)
	l2.fill(t, 10, 10)
	tg2 := hecTarget(t, HECConfig{URL: srv.URL, Token: "wrong-token"})
	x2 := startExporter(t, l2, tg2)
	waitFor(t, "an error", func() bool { return x2.x.Status()[0].Failed > 2 })
	st := x2.x.Status()[0]
	if st.Delivered != 0 || st.DeadLettered != 0 || strings.Contains(st.LastError, "wrong-token") {
		t.Fatalf("status %+v", st)
	}
}

// TestHECInvalidEvent: an event HEC cannot take goes to the dead-letter
// file; the events around it arrive once, in order.
func TestHECInvalidEvent(t *testing.T) {
	for _, ack := range []bool{false, true} {
		t.Run(fmt.Sprintf("ack=%v", ack), func(t *testing.T) {
			h, srv := newFakeHEC(t, ack)
			h.badMarker = `"uid":"warden-audit/37"`
			l := newMemLog(t)
			l.fill(t, 80, 40)
			tg := hecTarget(t, HECConfig{URL: srv.URL, Token: h.token, IndexerAck: ack, AckPoll: 5 * time.Millisecond})
			x := startExporter(t, l, tg)
			// With acknowledgement the events before the bad one are sent
			// again to be acknowledged, so they may be indexed twice.
			uniq := func() []string {
				if !ack {
					return h.uids()
				}
				seen := map[string]bool{}
				var out []string
				for _, u := range h.uids() {
					if !seen[u] {
						seen[u] = true
						out = append(out, u)
					}
				}
				return out
			}
			waitFor(t, "every other event", func() bool { return len(uniq()) == 81 })
			uids := uniq()
			for i, u := range uids {
				if u == "warden-audit/37" || (i > 0 && u == uids[i-1]) {
					t.Fatalf("event %s delivered (or duplicated) at %d", u, i)
				}
			}
			waitFor(t, "the dead letter", func() bool { return x.x.Status()[0].DeadLettered == 1 })
		})
	}
}

// TestHECIndexerAck: a batch counts as delivered only when acknowledged;
// an acknowledgement that never comes makes the sink send again.
func TestHECIndexerAck(t *testing.T) {
	h, srv := newFakeHEC(t, true)
	h.ackPolls = 3
	l := newMemLog(t)
	l.fill(t, 200, 50)
	tg := hecTarget(t, HECConfig{URL: srv.URL, Token: h.token, IndexerAck: true, AckPoll: 5 * time.Millisecond})
	x := startExporter(t, l, tg)
	waitFor(t, "every event", func() bool { return len(h.uids()) == 204 })
	checkUIDs(t, l, h.uids(), false)
	waitFor(t, "the cursor", func() bool { return x.x.Status()[0].Cursor == 200 })

	h2, srv2 := newFakeHEC(t, true)
	h2.neverAck = true
	l2 := newMemLog(t)
	l2.fill(t, 30, 30)
	tg2 := hecTarget(t, HECConfig{URL: srv2.URL, Token: h2.token, IndexerAck: true, AckPoll: 5 * time.Millisecond, AckTimeout: 50 * time.Millisecond})
	x2 := startExporter(t, l2, tg2)
	waitFor(t, "a re-send", func() bool { h2.mu.Lock(); defer h2.mu.Unlock(); return h2.requests > 20 })
	if st := x2.x.Status()[0]; st.Delivered != 0 || st.Cursor != 0 || !strings.Contains(st.LastError, "no indexer acknowledgement") {
		t.Fatalf("unacknowledged batch counted: %+v", st)
	}
	h2.mu.Lock()
	h2.neverAck = false
	h2.mu.Unlock()
	// The cursor counts entries; the checkpoint after entry 29 may be
	// acknowledged in a later batch: wait for every distinct event.
	waitFor(t, "acknowledged delivery", func() bool {
		if x2.x.Status()[0].Cursor != 30 {
			return false
		}
		seen := map[string]bool{}
		for _, u := range h2.uids() {
			seen[u] = true
		}
		return len(seen) == 31
	})
	checkUIDs(t, l2, h2.uids(), true)
}

// TestHECTooLarge: a 413 splits the batch; a single event too large is
// dead-lettered.
func TestHECTooLarge(t *testing.T) {
	var mu sync.Mutex
	var got []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if len(b) > 9000 {
			w.WriteHeader(413)
			return
		}
		dec := json.NewDecoder(bytes.NewReader(b))
		mu.Lock()
		defer mu.Unlock()
		for {
			var he hecEvent
			if dec.Decode(&he) != nil {
				break
			}
			var m struct{ Metadata struct{ UID string } }
			json.Unmarshal(he.Event, &m)
			got = append(got, m.Metadata.UID)
		}
		w.Write([]byte(`{"text":"Success","code":0}`))
	}))
	defer srv.Close()
	s, err := NewHECSink(HECConfig{URL: srv.URL, Token: "t", Gzip: new(bool)})
	if err != nil {
		t.Fatal(err)
	}
	evs := syslogEvents(t, 10)
	big := evs[4]
	big.JSON = []byte(`{"metadata":{"uid":"big"},"pad":"` + strings.Repeat("x", 10000) + `"}`)
	evs[4] = big
	var dead []string
	for i := 0; i < len(evs); {
		ack, err := s.Send(context.Background(), evs[i:])
		if err != nil {
			t.Fatal(err)
		}
		for _, r := range ack.Rejected {
			dead = append(dead, evs[i+r.Index].UID)
		}
		i += ack.Settled
	}
	if len(got) != 9 || len(dead) != 1 || dead[0] != big.UID {
		t.Fatalf("got %v, dead %v", got, dead)
	}
}

func TestHECConfigErrors(t *testing.T) {
	for _, c := range []HECConfig{{}, {URL: "ftp://x", Token: "t"}, {URL: "http://x"}, {URL: "http://x", Token: "t", Channel: "nope"}} {
		if _, err := NewHECSink(c); err == nil {
			t.Errorf("%+v accepted", c)
		}
	}
}
