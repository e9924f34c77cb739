package admin_test

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/report"
)

// TestReportEndpoint: the admin API's report is the generator's, over
// the log the API writes to: an approval request made through the API is
// counted, a refused self-approval is an exception, and the HTML and PDF
// renderings are served with their types.
func TestReportEndpoint(t *testing.T) {
	e := newEnv(t)
	grant := e.pendingGrant()
	if a := e.do("POST", "/v1/approvals/"+grant+"/approve", "alice-all", `{"reason":"mine"}`); a.status != 403 {
		t.Fatalf("self-approval: %d %s", a.status, a.body)
	}
	from := time.Now().UTC().Add(-time.Hour).Format(time.RFC3339)
	to := time.Now().UTC().Add(time.Hour).Format(time.RFC3339)
	a := e.do("GET", "/v1/report?from="+from+"&to="+to+"&seed=3", "dan", "")
	if a.status != 200 {
		t.Fatalf("%d %s", a.status, a.body)
	}
	var r report.Report
	if err := json.Unmarshal(a.body, &r); err != nil {
		t.Fatal(err)
	}
	if r.Format != report.Format || !r.Cover.Verification.OK || r.Cover.Seed != 3 || !strings.Contains(r.Cover.GeneratedBy, "dan") {
		t.Fatalf("cover: %+v", r.Cover)
	}
	var found bool
	for _, s := range r.Sections {
		if s.Control != "A.8.2" {
			continue
		}
		for _, f := range s.Figures {
			if f.ID == "approvals_requested" && f.Value != 1 || f.ID == "reviews_refused" && f.By["self-approval"] != 1 {
				t.Errorf("%s = %d %v", f.ID, f.Value, f.By)
			}
		}
		found = s.ExceptionsTotal == 1 && strings.Contains(s.Exceptions[0].What, "self-approval attempt by alice")
	}
	if !found {
		t.Error("the self-approval attempt is not an A.8.2 exception")
	}
	for format, ct := range map[string]string{"html": "text/html", "pdf": "application/pdf"} {
		a := e.do("GET", "/v1/report?from="+from+"&to="+to+"&format="+format, "dan", "")
		if a.status != 200 || !strings.HasPrefix(a.header.Get("Content-Type"), ct) {
			t.Errorf("%s: %d %s", format, a.status, a.header.Get("Content-Type"))
		}
	}
}
