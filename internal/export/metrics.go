package export

import (
	"errors"

	"github.com/prometheus/client_golang/prometheus"
)

// metrics are the exporter's Prometheus series, labelled by sink.
type metrics struct {
	lagEntries   *prometheus.GaugeVec
	lagSeconds   *prometheus.GaugeVec
	delivered    *prometheus.CounterVec
	failed       *prometheus.CounterVec
	deadLettered *prometheus.CounterVec
	filtered     *prometheus.CounterVec
	filterErrors *prometheus.CounterVec
	mismatches   *prometheus.CounterVec
	throttled    *prometheus.CounterVec
}

func newMetrics(reg prometheus.Registerer) (*metrics, error) {
	m := &metrics{
		lagEntries: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_export_lag_entries", Help: "Committed audit entries not yet delivered to the sink.",
		}, []string{"sink"}),
		lagSeconds: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "warden_export_lag_seconds", Help: "Age of the oldest entry read but not yet delivered to the sink.",
		}, []string{"sink"}),
		delivered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_delivered_total", Help: "Events the sink acknowledged.",
		}, []string{"sink"}),
		failed: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_failed_total", Help: "Failed delivery attempts (retried with backoff).",
		}, []string{"sink"}),
		deadLettered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_dead_lettered_total", Help: "Events the sink refused for good, written to its dead-letter file.",
		}, []string{"sink"}),
		filtered: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_filtered_total", Help: "Entries the sink's filter left out.",
		}, []string{"sink"}),
		filterErrors: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_filter_errors_total", Help: "Filter evaluations that failed (the entry was delivered).",
		}, []string{"sink"}),
		mismatches: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_checkpoint_mismatch_total", Help: "Checkpoints whose signed tree hash did not match the entries the exporter read.",
		}, []string{"sink"}),
		throttled: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "warden_export_throttled_seconds_total", Help: "Seconds the sink waited under its catch-up rate limit.",
		}, []string{"sink"}),
	}
	if reg != nil {
		// An exporter restarted in the same process (a replica that lost
		// and regained the export lease) keeps counting on the series
		// already registered.
		var err error
		for _, g := range []**prometheus.GaugeVec{&m.lagEntries, &m.lagSeconds} {
			if *g, err = register(reg, *g); err != nil {
				return nil, err
			}
		}
		for _, c := range []**prometheus.CounterVec{&m.delivered, &m.failed, &m.deadLettered, &m.filtered, &m.filterErrors, &m.mismatches, &m.throttled} {
			if *c, err = register(reg, *c); err != nil {
				return nil, err
			}
		}
	}
	return m, nil
}

// register registers c, or returns the equal collector registered before.
func register[C prometheus.Collector](reg prometheus.Registerer, c C) (C, error) {
	err := reg.Register(c)
	var are prometheus.AlreadyRegisteredError
	if errors.As(err, &are) {
		if prev, ok := are.ExistingCollector.(C); ok {
			return prev, nil
		}
	}
	return c, err
}
