package runner

import (
	"bufio"
	"context"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ExportLag is an export stage's lag, from the gateway's metrics: the
// largest over its sinks.
type ExportLag struct {
	// Entries is warden_export_lag_entries: committed entries not yet
	// delivered (entries after the newest stored checkpoint included:
	// export sends only signed entries, checkpoint_every 1000).
	Entries float64 `json:"entries"`
	// Seconds is warden_export_lag_seconds: the age of the oldest entry
	// read and not yet delivered.
	Seconds float64 `json:"seconds"`
	// Throttled is warden_export_throttled_seconds_total: time a sink
	// waited under its catch-up limit since the gateway started.
	Throttled float64 `json:"throttled_seconds"`
}

// scrapeExportLag reads the export gauges from the admin listener's
// /metrics.
func scrapeExportLag(ctx context.Context, admin string) (ExportLag, error) {
	ctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, admin+"/metrics", nil)
	if err != nil {
		return ExportLag{}, err
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return ExportLag{}, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return ExportLag{}, fmt.Errorf("GET %s/metrics: %s", admin, resp.Status)
	}
	var lag ExportLag
	found := false
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(make([]byte, 64<<10), 1<<20)
	for sc.Scan() {
		line := sc.Text()
		var dst *float64
		switch {
		case strings.HasPrefix(line, "warden_export_lag_entries{"):
			dst = &lag.Entries
		case strings.HasPrefix(line, "warden_export_lag_seconds{"):
			dst = &lag.Seconds
		case strings.HasPrefix(line, "warden_export_throttled_seconds_total{"):
			dst = &lag.Throttled
		default:
			continue
		}
		f := strings.Fields(line)
		v, err := strconv.ParseFloat(f[len(f)-1], 64)
		if err != nil {
			continue
		}
		found = true
		if dst == &lag.Throttled {
			*dst += v
		} else {
			*dst = max(*dst, v)
		}
	}
	if err := sc.Err(); err != nil {
		return ExportLag{}, err
	}
	if !found {
		return ExportLag{}, fmt.Errorf("no export metrics at %s/metrics", admin)
	}
	return lag, nil
}
