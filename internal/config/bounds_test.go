package config

import (
	"strings"
	"testing"
	"time"
)

// TestResourceBoundKeys: the resource-bound keys decode from YAML with
// their units, default when absent, and are validated with the key path.
func TestResourceBoundKeys(t *testing.T) {
	cfg, err := Parse("warden.yaml", []byte(validYAML+`timeouts:
  drain_delay: 10s
  request_body: 5s
  upstream_body_idle: 7s
  store: 2s
limits:
  max_inflight_body_bytes: 64MiB
  max_inflight_response_bytes: 32MiB
  max_connections: 100
  admin_max_connections: 16
`))
	if err != nil {
		t.Fatal(err)
	}
	to, li := cfg.Timeouts, cfg.Limits
	if to.DrainDelay != 10*time.Second || to.RequestBody != 5*time.Second || to.UpstreamBodyIdle != 7*time.Second || to.Store != 2*time.Second {
		t.Errorf("timeouts %+v", to)
	}
	if li.MaxInflightBodyBytes != 64<<20 || li.MaxInflightResponseBytes != 32<<20 || li.MaxConnections != 100 || li.AdminMaxConnections != 16 {
		t.Errorf("limits %+v", li)
	}

	def, err := Parse("warden.yaml", []byte(validYAML+"limits: {max_request_body: 512MiB}\n"))
	if err != nil {
		t.Fatal(err)
	}
	if def.Timeouts.DrainDelay != 0 || def.Timeouts.RequestBody != 30*time.Second || def.Timeouts.UpstreamBodyIdle != 60*time.Second || def.Timeouts.Store != 10*time.Second {
		t.Errorf("default timeouts %+v", def.Timeouts)
	}
	if def.Limits.MaxInflightBodyBytes != 512<<20 || def.Limits.MaxInflightResponseBytes != 256<<20 || def.Limits.MaxConnections != 0 || def.Limits.AdminMaxConnections != 0 {
		t.Errorf("default limits %+v (the body budget must hold at least one largest body)", def.Limits)
	}

	for _, tc := range []struct{ yaml, key string }{
		{"timeouts: {drain_delay: -1s}\n", "timeouts.drain_delay"},
		{"timeouts: {request_body: -1s}\n", "timeouts.request_body"},
		{"timeouts: {upstream_body_idle: -1s}\n", "timeouts.upstream_body_idle"},
		{"timeouts: {store: -1s}\n", "timeouts.store"},
		{"limits: {max_connections: -1}\n", "limits.max_connections"},
		{"limits: {admin_max_connections: -1}\n", "limits.admin_max_connections"},
		{"limits: {max_request_body: 10MiB, max_inflight_body_bytes: 1MiB}\n", "limits.max_inflight_body_bytes"},
	} {
		_, err := Parse("warden.yaml", []byte(validYAML+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.key) {
			t.Errorf("%q: error %v, want one naming %s", tc.yaml, err, tc.key)
		}
	}
}
