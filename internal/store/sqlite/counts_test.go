package sqlite_test

import (
	"context"
	"database/sql"
	"fmt"
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// countQueries are every grouping the admin counts endpoint accepts: no
// dimension, each dimension alone, every pair and a few longer lists,
// with and without a kind filter, over the whole log and over windows
// that cut chunks (and one that ends before the log starts).
func countQueries(t0 time.Time) []audit.AggregateQuery {
	var bys [][]string
	bys = append(bys, nil)
	dims := audit.AggregateDimensions
	for i, a := range dims {
		bys = append(bys, []string{a})
		for _, b := range dims[i+1:] {
			bys = append(bys, []string{a, b})
		}
	}
	bys = append(bys, []string{audit.ByPrincipal, audit.ByRoute, audit.ByModel}, []string{audit.ByCategory, audit.ByDecision, audit.ByRule, audit.ByStatus},
		slices.Clone(dims), []string{audit.ByRoute, audit.ByKind})
	var qs []audit.AggregateQuery
	windows := [][2]time.Time{{}, {t0.Add(30 * time.Minute), t0.Add(90 * time.Minute)}, {t0, t0.Add(48 * time.Hour)},
		{t0.Add(-time.Hour), t0.Add(7 * time.Minute)}, {t0.Add(-2 * time.Hour), t0.Add(-time.Hour)}, {t0.Add(100*time.Minute + time.Second), time.Time{}}}
	for _, w := range windows {
		for _, by := range bys {
			for _, kind := range []string{"", audit.KindRequestCompleted, audit.KindRequestDenied} {
				qs = append(qs, audit.AggregateQuery{From: w[0], To: w[1], By: by, Kind: kind})
			}
		}
	}
	return qs
}

// appendMix appends n entries from seq0 on, a minute apart from t0, with
// every dimension varying.
func appendMix(t *testing.T, l *audit.Log, t0 time.Time, seq0, n int) {
	t.Helper()
	kinds := []string{audit.KindRequestAdmitted, audit.KindRequestCompleted, audit.KindRequestDenied, audit.KindApprovalRequested}
	for i := seq0; i < seq0+n; i++ {
		e := &audit.Entry{Kind: kinds[i%len(kinds)], Time: t0.Add(time.Duration(i) * time.Minute), RequestID: fmt.Sprintf("r%d", i),
			Principal: &identity.Principal{Issuer: "i", Subject: fmt.Sprintf("u%d", i%7), Kind: "user"},
			Route:     []string{"chat", "embed", "tune"}[i%3], Model: []string{"a", "b"}[i%2]}
		switch e.Kind {
		case audit.KindRequestCompleted:
			e.Outcome, e.Status = []string{audit.OutcomeOK, audit.OutcomeUpstreamError}[i%2], 200+i%3
		case audit.KindRequestDenied:
			e.Decision = &audit.Decision{Action: "deny", Rule: fmt.Sprintf("rule-%d", i%3), PolicyVersion: "v1"}
		}
		if _, err := l.Append(context.Background(), e); err != nil {
			t.Fatal(err)
		}
	}
}

// sameCounts asserts that the log's counts (the index's per-chunk counts
// plus the entries beyond them) equal a recount of the log for every
// query, and returns how many whole chunks the index answered for.
func sameCounts(t *testing.T, l *audit.Log, st *sqlite.Store, t0 time.Time) int {
	t.Helper()
	ctx := context.Background()
	// The log counts up to its per-batch head, the recount up to the
	// store's checkpoint history: compare once the history caught up.
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(10 * time.Millisecond) {
		if c, err := st.LatestCheckpoint(ctx); err == nil && c.Size == l.Latest().Size {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the store's checkpoint history did not catch up with the head")
		}
	}
	// Searching catches the index up with the log.
	if _, err := st.Search(ctx, audit.Query{Limit: 1}); err != nil {
		t.Fatal(err)
	}
	for _, q := range countQueries(t0) {
		got, err := l.Aggregate(ctx, q)
		if err != nil {
			t.Fatal(err)
		}
		want, err := audit.AggregateStore(ctx, st, q)
		if err != nil {
			t.Fatal(err)
		}
		if got.Checkpoint.Size != want.Checkpoint.Size {
			t.Fatalf("counted over %d entries, recount over %d", got.Checkpoint.Size, want.Checkpoint.Size)
		}
		if got.Total != want.Total || !reflect.DeepEqual(got.Groups, want.Groups) || got.Scanned != want.Scanned {
			t.Fatalf("%+v: counts %d %+v, recount %d %+v", q, got.Total, got.Groups, want.Total, want.Groups)
		}
	}
	size := l.Latest().Size
	bs, err := st.CountBlocks(ctx, 0, size)
	if err != nil {
		t.Fatal(err)
	}
	whole := 0
	for _, b := range bs {
		if b.N == audit.CountChunk {
			whole++
		}
	}
	return whole
}

// TestAggregateCounts: the per-chunk counts the index keeps give the same
// counts as a recount of the log after appends, after a restart (the
// index catching up from the log rather than fed), and after the index
// is rebuilt; an edited count row is found by CheckIndex (warden index
// check), and one that no longer adds up is not used.
func TestAggregateCounts(t *testing.T) {
	defer func(c, w int64) { audit.CountChunk, audit.CountBlockWindow = c, w }(audit.CountChunk, audit.CountBlockWindow)
	audit.CountChunk, audit.CountBlockWindow = 16, 3
	ctx := context.Background()
	dir := t.TempDir()
	path := filepath.Join(dir, "audit.db")
	t0 := time.Date(2026, 11, 30, 0, 0, 0, 0, time.UTC)

	l, st := openLog(t, dir)
	appendMix(t, l, t0, 0, 100)
	if n := sameCounts(t, l, st, t0); n < 100/16 {
		t.Fatalf("the index answered for %d whole chunks, want at least %d", n, 100/16)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// A restart: the log grows by the close and open entries, what the
	// indexer had not written yet is caught up from the log, and more
	// entries are fed.
	l, st = openLog(t, dir)
	appendMix(t, l, t0, 100, 57)
	size := l.Latest().Size
	if n := sameCounts(t, l, st, t0); int64(n) < size/16 {
		t.Fatalf("after a restart the index answered for %d whole chunks, want %d", n, size/16)
	}
	if _, err := st.RebuildIndex(ctx); err != nil {
		t.Fatal(err)
	}
	if n := sameCounts(t, l, st, t0); int64(n) < size/16 {
		t.Fatalf("after a rebuild the index answered for %d whole chunks, want %d", n, size/16)
	}
	if rep, err := st.CheckIndex(ctx); err != nil || len(rep.Diffs) != 0 {
		t.Fatalf("CheckIndex = %+v, %v", rep, err)
	}
	if err := l.Close(ctx); err != nil {
		t.Fatal(err)
	}
	st.Close()

	// Edit the index: rename one principal in a chunk's block (the block
	// still parses, so it is used and the count is wrong), and add a byte
	// to another block (it no longer parses: counted from the log).
	db, err := sql.Open("sqlite", "file:"+sqlite.IndexPath(path))
	if err != nil {
		t.Fatal(err)
	}
	var data []byte
	if err := db.QueryRow("SELECT data FROM count_blocks WHERE start = 32").Scan(&data); err != nil {
		t.Fatal(err)
	}
	b, err := audit.ParseCountBlock(32, data)
	if err != nil {
		t.Fatal(err)
	}
	i := slices.Index(b.Values(audit.ByPrincipal), "u1")
	if i < 0 {
		t.Fatalf("no principal u1 in block 32: %q", b.Values(audit.ByPrincipal))
	}
	b.SetValue(audit.ByPrincipal, i, "mallory")
	for _, stmt := range []struct {
		q    string
		args []any
	}{
		{"UPDATE count_blocks SET data = ? WHERE start = 32", []any{b.AppendBinary(nil)}},
		{"UPDATE count_blocks SET data = data || x'00' WHERE start = 64", nil},
	} {
		if res, err := db.Exec(stmt.q, stmt.args...); err != nil {
			t.Fatal(err)
		} else if n, _ := res.RowsAffected(); n != 1 {
			t.Fatalf("%s: %d rows", stmt.q, n)
		}
	}
	db.Close()
	ro, err := sqlite.OpenReadOnly(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	rep, err := ro.CheckIndex(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := []audit.IndexDiff{
		{Seq: 32, Kind: "altered", Part: "counts", Detail: "the counts of entries [32, 48) differ from a recount of the log"},
		{Seq: 64, Kind: "altered", Part: "counts", Detail: "the counts of entries [64, 80) differ from a recount of the log"},
	}
	if !reflect.DeepEqual(rep.Diffs, want) {
		t.Fatalf("CheckIndex of edited counts = %+v, want %+v", rep.Diffs, want)
	}

	l, st = openLog(t, dir)
	defer st.Close()
	defer l.Close(ctx)
	q := audit.AggregateQuery{By: []string{audit.ByPrincipal}}
	got, err := l.Aggregate(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if got.Groups[len(got.Groups)-1].Principal != "mallory" {
		t.Errorf("the edited principal count was not used: %+v (the test no longer shows that counts come from the index)", got.Groups)
	}
	// Two dimensions besides the kind, a kind filter and a window come
	// from the blocks too.
	q = audit.AggregateQuery{By: []string{audit.ByPrincipal, audit.ByRoute}, Kind: audit.KindRequestAdmitted, From: t0.Add(33 * time.Minute), To: t0.Add(47 * time.Minute)}
	if got, err = l.Aggregate(ctx, q); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(got.Groups, func(g audit.Group) bool { return g.Principal == "mallory" }) {
		t.Errorf("a grouping by principal and route did not use the edited block: %+v", got.Groups)
	}
	q = audit.AggregateQuery{By: []string{audit.ByOutcome}, Kind: audit.KindRequestCompleted}
	got, err = l.Aggregate(ctx, q)
	if err != nil {
		t.Fatal(err)
	}
	if rc, err := audit.AggregateStore(ctx, st, q); err != nil || !reflect.DeepEqual(got.Groups, rc.Groups) {
		t.Errorf("counts with a chunk that does not add up = %+v, recount %+v (%v)", got.Groups, rc.Groups, err)
	}
}
