package admin_test

import (
	"encoding/json"
	"testing"

	"github.com/wardenhq/warden/internal/export"
)

// TestExportStatus: an auditor reads each sink's cursor and lag; on a
// replica that is not exporting, the saved cursor (none: 0) and a lag of
// the whole log.
func TestExportStatus(t *testing.T) {
	e := newEnv(t)
	appendRequests(t, e.audit, 5)
	a := e.do("GET", "/v1/export/status", "dan", "")
	if a.status != 200 {
		t.Fatalf("status %d: %s", a.status, a.body)
	}
	var rep export.Report
	if err := json.Unmarshal(a.body, &rep); err != nil {
		t.Fatal(err)
	}
	if rep.Exporting || rep.LogSize < 6 || len(rep.Sinks) != 1 || rep.Sinks[0].Sink != "siem" ||
		rep.Sinks[0].Cursor != 0 || rep.Sinks[0].LagEntries != rep.LogSize {
		t.Fatalf("report %s", a.body)
	}
}
