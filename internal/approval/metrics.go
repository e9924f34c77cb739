package approval

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// transitions counts committed transitions by audit kind.
type transitions struct {
	mu sync.Mutex
	n  map[string]int64
}

func (t *transitions) add(kinds []string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.n == nil {
		t.n = map[string]int64{}
	}
	for _, k := range kinds {
		t.n[k]++
	}
}

func (t *transitions) snapshot() map[string]int64 {
	t.mu.Lock()
	defer t.mu.Unlock()
	out := make(map[string]int64, len(t.n))
	for k, v := range t.n {
		out[k] = v
	}
	return out
}

var (
	descTransitions = prometheus.NewDesc("warden_approval_transitions_total", "Approval transitions committed by this process, by audit kind.", []string{"kind"}, nil)
	descWebhooks    = prometheus.NewDesc("warden_approval_webhooks_total", "Webhook notifications by outcome (queued, delivered, dropped: queue full, failed: gave up).", []string{"outcome"}, nil)
	descAttempts    = prometheus.NewDesc("warden_approval_webhook_attempts_total", "Webhook delivery attempts.", nil, nil)
)

// Collector returns a prometheus.Collector of the service's counters;
// register it once (e.g. prometheus.MustRegister(svc.Collector())).
func (s *Service) Collector() prometheus.Collector { return collector{s} }

type collector struct{ s *Service }

func (c collector) Describe(ch chan<- *prometheus.Desc) {
	ch <- descTransitions
	ch <- descWebhooks
	ch <- descAttempts
}

func (c collector) Collect(ch chan<- prometheus.Metric) {
	for k, v := range c.s.trans.snapshot() {
		ch <- prometheus.MustNewConstMetric(descTransitions, prometheus.CounterValue, float64(v), k)
	}
	st := c.s.Stats()
	for _, o := range []struct {
		name string
		v    int64
	}{{"queued", st.WebhooksQueued}, {"delivered", st.WebhooksDelivered}, {"dropped", st.WebhooksDropped}, {"failed", st.WebhooksFailed}} {
		ch <- prometheus.MustNewConstMetric(descWebhooks, prometheus.CounterValue, float64(o.v), o.name)
	}
	ch <- prometheus.MustNewConstMetric(descAttempts, prometheus.CounterValue, float64(st.WebhookAttempts))
}
