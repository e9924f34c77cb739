package mask

import "github.com/prometheus/client_golang/prometheus"

// Metrics counts masking per profile and rule for Prometheus. Create one per
// process and register it; the gateway calls Observe with a response's
// recorder once the body is closed.
type Metrics struct {
	actions *prometheus.CounterVec
	refused *prometheus.CounterVec
}

// NewMetrics returns unregistered masking metrics:
// warden_mask_values_total{profile,rule,entity} and
// warden_mask_refused_total{profile}.
func NewMetrics() *Metrics {
	return &Metrics{
		actions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mask_values_total",
			Help: "Values masked in responses, by masking profile, rule and entity type.",
		}, []string{"profile", "rule", "entity"}),
		refused: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_mask_refused_total",
			Help: "Responses refused or cut short by the masker (fail closed), by masking profile.",
		}, []string{"profile"}),
	}
}

// Describe implements prometheus.Collector.
func (x *Metrics) Describe(ch chan<- *prometheus.Desc) {
	x.actions.Describe(ch)
	x.refused.Describe(ch)
}

// Collect implements prometheus.Collector.
func (x *Metrics) Collect(ch chan<- prometheus.Metric) {
	x.actions.Collect(ch)
	x.refused.Collect(ch)
}

// Observe adds what rec recorded for a response masked with profile.
func (x *Metrics) Observe(profile string, rec *Recorder) {
	for _, a := range rec.Actions() {
		x.actions.WithLabelValues(profile, a.Rule, a.Entity).Add(float64(a.Count))
	}
	if rec.Failure() != "" {
		x.refused.WithLabelValues(profile).Inc()
	}
}

var _ prometheus.Collector = (*Metrics)(nil)
