package report

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// TestReportMonitoring: dead letters, witness refusals and export status
// entries are counted in A.8.16 (the first two also as exceptions, a
// refusal in A.5.33 too), and the bundle recomputes them.
func TestReportMonitoring(t *testing.T) {
	tl := newTestLog(t)
	tl.add(t, &audit.Entry{Kind: audit.KindExportDeadLettered, Details: map[string]any{"sink": "hec", "uid": "warden-audit/3", "seq": 3, "kind": "request.completed", "reason": "400 invalid event"}})
	tl.add(t, &audit.Entry{Kind: audit.KindExportDeadLettered, Details: map[string]any{"sink": "hec", "uid": "warden-audit/4", "seq": 4, "kind": "request.denied", "reason": "400 invalid event"}})
	tl.add(t, &audit.Entry{Kind: audit.KindWitnessRefused, Details: map[string]any{"witness": "w1", "size": 9, "result": "refused", "reason": "inconsistent"}})
	sinks := func(hec, arch float64) []any {
		return []any{map[string]any{"sink": "hec", "cursor": 4, "lag_entries": int64(hec * 10), "lag_seconds": hec},
			map[string]any{"sink": "archive", "cursor": 5, "lag_entries": int64(arch * 10), "lag_seconds": arch}}
	}
	tl.add(t, &audit.Entry{Kind: audit.KindExportStatus, Details: map[string]any{"reason": "periodic", "sinks": sinks(2.5, 0)}})
	tl.add(t, &audit.Entry{Kind: audit.KindExportStatus, Details: map[string]any{"reason": "shutdown", "sinks": sinks(0.2, 1.1)}})
	res := generateScenario(t, tl, day)
	want := map[string]struct {
		value int64
		by    map[string]int64
	}{
		"export_dead_letters":    {2, map[string]int64{"hec": 2}},
		"witness_refusals":       {1, map[string]int64{"w1": 1}},
		"export_status_reports":  {2, map[string]int64{"periodic": 1, "shutdown": 1}},
		"export_max_lag_entries": {25, map[string]int64{"hec": 25, "archive": 11}},
		"export_max_lag_seconds": {3, map[string]int64{"hec": 3, "archive": 2}},
	}
	for _, s := range res.Report.Sections {
		switch s.Control {
		case "A.8.16":
			for _, f := range s.Figures {
				w, ok := want[f.ID]
				if !ok {
					continue
				}
				delete(want, f.ID)
				if f.Value != w.value || !sameJSON(f.By, w.by) {
					t.Errorf("%s = %d %v, want %d %v", f.ID, f.Value, f.By, w.value, w.by)
				}
			}
			if s.ExceptionsTotal != 3 || !strings.Contains(s.Exceptions[0].What, "export sink hec refused event warden-audit/3") ||
				!strings.Contains(s.Exceptions[2].What, "witness w1 refused the checkpoint of size 9") {
				t.Errorf("A.8.16 exceptions: %+v", s.Exceptions)
			}
		case "A.5.33":
			if s.ExceptionsTotal != 1 {
				t.Errorf("A.5.33 exceptions: %+v", s.Exceptions)
			}
		}
	}
	if len(want) > 0 {
		t.Errorf("figures missing: %v", want)
	}
	var b bytes.Buffer
	if err := WriteBundle(context.Background(), &b, res, BundleOptions{VerifierKey: verifierKey(t, tl)}); err != nil {
		t.Fatal(err)
	}
	if _, err := VerifyBundle(context.Background(), bytes.NewReader(b.Bytes()), BundleVerifyOptions{Verifier: tl.v}); err != nil {
		t.Fatal(err)
	}
	// A dead letter left out of the report's exceptions is caught.
	tampered := repack(t, b.Bytes(), true, func(f map[string][]byte) {
		var r Report
		json.Unmarshal(f[fileReportJSON], &r)
		for i := range r.Sections {
			if r.Sections[i].Control == "A.8.16" {
				r.Sections[i].Exceptions = r.Sections[i].Exceptions[1:]
				r.Sections[i].ExceptionsTotal--
			}
		}
		f[fileReportJSON] = mustJSON(&r)
	})
	if _, err := VerifyBundle(context.Background(), bytes.NewReader(tampered), BundleVerifyOptions{Verifier: tl.v}); err == nil || !strings.Contains(err.Error(), "A.8.16: the report lists 2 exceptions, the entries give 3") {
		t.Fatalf("a hidden dead letter: %v", err)
	}
}
