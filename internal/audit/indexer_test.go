package audit_test

import (
	"context"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
)

// TestIndexerOverflow: entries the indexer could not keep in memory are
// read back from the log, so a search still finds every one of them.
func TestIndexerOverflow(t *testing.T) {
	old := audit.IndexerMaxPending
	audit.IndexerMaxPending = 4
	t.Cleanup(func() { audit.IndexerMaxPending = old })
	e := newEnv(t, nil)
	appendN(t, e.log, 50)
	got, err := e.log.Search(context.Background(), audit.Query{Kind: audit.KindRequestAdmitted, Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 50 {
		t.Fatalf("search found %d of 50 entries", len(got))
	}
	for i, en := range got {
		if en.RequestID != request(i).RequestID {
			t.Fatalf("result %d is %s, want %s", i, en.RequestID, request(i).RequestID)
		}
	}
}
