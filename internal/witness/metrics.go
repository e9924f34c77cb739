package witness

import (
	"github.com/prometheus/client_golang/prometheus"
)

// Results of one submission, the `result` label of
// warden_witness_submissions_total.
const (
	// ResultCosigned: the witness cosigned the checkpoint.
	ResultCosigned = "cosigned"
	// ResultRefused: the witness's view contradicts the log (it cosigned a
	// larger tree, or refused the checkpoint as inconsistent): the log was
	// rolled back, truncated or rewritten. Page someone.
	ResultRefused = "refused"
	// ResultRejected: the witness rejected the request for a reason of
	// configuration (unknown origin, untrusted key, wrong witness key, bad
	// request).
	ResultRejected = "rejected"
	// ResultUnreachable: no answer, a timeout, a 5xx or pushback.
	ResultUnreachable = "unreachable"
)

type metrics struct {
	submissions *prometheus.CounterVec
	size        *prometheus.GaugeVec
	up          *prometheus.GaugeVec
	last        *prometheus.GaugeVec
}

func newMetrics() *metrics {
	return &metrics{
		submissions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_witness_submissions_total",
			Help: "Checkpoint submissions to each witness, by result (cosigned, refused, rejected, unreachable).",
		}, []string{"witness", "result"}),
		size: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_witness_cosigned_tree_size",
			Help: "Tree size of the newest checkpoint each witness cosigned.",
		}, []string{"witness"}),
		up: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_witness_up",
			Help: "1 if the last submission to the witness was cosigned, 0 if it failed.",
		}, []string{"witness"}),
		last: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_witness_last_cosigned_timestamp_seconds",
			Help: "Unix time of the newest cosignature received from each witness.",
		}, []string{"witness"}),
	}
}

func (m *metrics) Describe(ch chan<- *prometheus.Desc) {
	m.submissions.Describe(ch)
	m.size.Describe(ch)
	m.up.Describe(ch)
	m.last.Describe(ch)
}

func (m *metrics) Collect(ch chan<- prometheus.Metric) {
	m.submissions.Collect(ch)
	m.size.Collect(ch)
	m.up.Collect(ch)
	m.last.Collect(ch)
}
