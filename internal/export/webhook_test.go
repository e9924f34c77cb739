package export

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/approval"
)

// webhookReceiver checks signatures like a careful receiver: a bad or
// stale signature is refused with 401 (retried, never dropped).
type webhookReceiver struct {
	secret string

	mu         sync.Mutex
	uids       []string
	deliveries map[string]int
	badSigs    int
	failNext   int    // answer 503 this many times
	refuse     string // answer 422 to any batch holding this uid
}

func (w *webhookReceiver) ServeHTTP(rw http.ResponseWriter, r *http.Request) {
	w.mu.Lock()
	defer w.mu.Unlock()
	b, _ := io.ReadAll(r.Body)
	ts := r.Header.Get(approval.HeaderTimestamp)
	sec, _ := strconv.ParseInt(ts, 10, 64)
	if !approval.VerifySignature(w.secret, ts, b, r.Header.Get(approval.HeaderSignature)) || time.Since(time.Unix(sec, 0)) > 5*time.Minute {
		w.badSigs++
		rw.WriteHeader(401)
		return
	}
	if r.Header.Get(approval.HeaderEvent) != WebhookEvent || r.Header.Get("Content-Type") != "application/json" {
		rw.WriteHeader(400)
		return
	}
	if w.failNext > 0 {
		w.failNext--
		rw.WriteHeader(503)
		return
	}
	var batch WebhookBatch
	if err := json.Unmarshal(b, &batch); err != nil || batch.DeliveryID != r.Header.Get(approval.HeaderDelivery) {
		rw.WriteHeader(400)
		return
	}
	var uids []string
	for _, e := range batch.Events {
		var m struct{ Metadata struct{ UID string } }
		json.Unmarshal(e, &m)
		if w.refuse != "" && m.Metadata.UID == w.refuse {
			rw.WriteHeader(422)
			return
		}
		uids = append(uids, m.Metadata.UID)
	}
	if w.deliveries == nil {
		w.deliveries = map[string]int{}
	}
	w.deliveries[batch.DeliveryID]++
	w.uids = append(w.uids, uids...)
	rw.WriteHeader(204)
}

func (w *webhookReceiver) got() []string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]string(nil), w.uids...)
}

func TestWebhookSignedBatches(t *testing.T) {
	rcv := &webhookReceiver{secret: "hook-secret", failNext: 3, refuse: "warden-audit/42"}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	l := newMemLog(t)
	l.fill(t, 300, 100)
	s, err := NewWebhookSink(WebhookConfig{URL: srv.URL + "/hooks/T0K3N", Secret: rcv.secret})
	if err != nil {
		t.Fatal(err)
	}
	h := startExporter(t, l, target(t.TempDir(), "hook", s))
	waitFor(t, "every other event", func() bool { return len(rcv.got()) == 302 })
	got := rcv.got()
	for i, u := range got {
		if u == "warden-audit/42" || (i > 0 && u == got[i-1]) {
			t.Fatalf("%s delivered or duplicated", u)
		}
	}
	waitFor(t, "the dead letter", func() bool { return h.x.Status()[0].DeadLettered == 1 })
	st := h.x.Status()[0]
	if st.Failed < 3 || strings.Contains(st.LastError, "T0K3N") {
		t.Fatalf("status %+v", st)
	}
	if rcv.badSigs != 0 {
		t.Fatalf("%d deliveries had a bad signature", rcv.badSigs)
	}

	// A wrong secret: the receiver refuses with 401; retried, not dropped.
	rcv2 := &webhookReceiver{secret: "right"}
	srv2 := httptest.NewServer(rcv2)
	defer srv2.Close()
	s2, _ := NewWebhookSink(WebhookConfig{URL: srv2.URL, Secret: "wrong"})
	l2 := newMemLog(t)
	l2.fill(t, 5, 5)
	h2 := startExporter(t, l2, target(t.TempDir(), "hook2", s2))
	waitFor(t, "refusals", func() bool { return h2.x.Status()[0].Failed >= 3 })
	if st := h2.x.Status()[0]; st.Delivered != 0 || st.DeadLettered != 0 {
		t.Fatalf("status %+v", st)
	}
}

func TestWebhookDeliveryIDStable(t *testing.T) {
	evs := syslogEvents(t, 5)
	if deliveryID(evs) != deliveryID(append([]Event(nil), evs...)) || deliveryID(evs) == deliveryID(evs[1:]) {
		t.Fatal("delivery id is not a stable function of the batch")
	}
	if got := redactURL("https://hooks.example/services/T0K3N?x=1"); got != "https://hooks.example/…" {
		t.Fatal(got)
	}
}
