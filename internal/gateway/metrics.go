package gateway

import (
	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the gateway's Prometheus series. They never carry a
// credential, a principal's groups or a request body as a label.
type metrics struct {
	requests            *prometheus.CounterVec
	upstreamDur         *prometheus.HistogramVec
	gatewayAdded        *prometheus.HistogramVec
	inflight            prometheus.Gauge
	auditRefused        prometheus.Counter
	auditCompleteFailed prometheus.Counter
	authFailures        *prometheus.CounterVec
	policyDecision      *prometheus.CounterVec
	maskActions         *prometheus.CounterVec
	recordingRefused    prometheus.Counter
	recordings          *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) *metrics {
	latBuckets := []float64{.0001, .00025, .0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1}
	m := &metrics{
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_requests_total", Help: "Requests handled, by route and HTTP status.",
		}, []string{"route", "code"}),
		upstreamDur: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_upstream_duration_seconds", Help: "Time from forwarding a request to the upstream's response headers.",
			Buckets: prometheus.ExponentialBuckets(0.001, 2.5, 14),
		}, []string{"route"}),
		gatewayAdded: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name: "warden_gateway_added_seconds", Help: "Time the gateway itself added before the response headers (total minus upstream).",
			Buckets: latBuckets,
		}, []string{"route"}),
		inflight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "warden_inflight_requests", Help: "Requests currently being handled.",
		}),
		auditRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_audit_refused_total", Help: "Requests refused with 503 because the audit log could not durably record them.",
		}),
		auditCompleteFailed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_audit_completion_failures_total", Help: "Completed requests whose request.completed entry could not be recorded (they stay incomplete in the log).",
		}),
		authFailures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_auth_failures_total", Help: "Authentication failures, by reason code.",
		}, []string{"reason"}),
		policyDecision: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_policy_decisions_total", Help: "Policy decisions, by action and rule.",
		}, []string{"action", "rule"}),
		maskActions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mask_actions_total", Help: "Values masked in responses, by rule and entity.",
		}, []string{"rule", "entity"}),
		recordingRefused: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "warden_recording_refused_total", Help: "Requests refused with 503 because the recording they require could not be stored (recordings.mode: strict).",
		}),
		recordings: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_recordings_total", Help: "Session recordings finished, by outcome (stored, failed).",
		}, []string{"outcome"}),
	}
	reg.MustRegister(m.recordingRefused, m.recordings)
	reg.MustRegister(m.requests, m.upstreamDur, m.gatewayAdded, m.inflight, m.auditRefused, m.auditCompleteFailed, m.authFailures, m.policyDecision, m.maskActions)
	return m
}
