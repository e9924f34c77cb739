package recordingcheck_test

import (
	"context"
	"fmt"
	"log/slog"
	"net/http"
	"path/filepath"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recordingcheck"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// env is an audit log and a recorder as the gateway wires them.
type env struct {
	log *audit.Log
	rec *recording.Recorder
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	cfg := audit.Config{}
	cfg.SetDefaults()
	cfg.Resolve(dir)
	signer, verifier, err := audit.LoadOrCreateKeys(cfg.SigningKeyFile, "recordingcheck-test")
	if err != nil {
		t.Fatal(err)
	}
	st, err := sqlite.Open(ctx, cfg.Path)
	if err != nil {
		t.Fatal(err)
	}
	l, err := audit.Open(ctx, st, cfg, signer, verifier, audit.WithLogger(slog.New(slog.DiscardHandler)))
	if err != nil {
		st.Close()
		t.Fatal(err)
	}
	t.Cleanup(func() {
		l.Close(context.Background())
		st.Close()
	})
	rc := recording.Config{}
	rc.SetDefaults()
	rc.Resolve(dir)
	cat, err := sqlite.OpenRecordingCatalog(ctx, filepath.Join(dir, "recordings", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	rec, err := recording.Open(ctx, rc, cat, recording.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { rec.Close() })
	return &env{log: l, rec: rec}
}

// request does what the gateway does for one request: Reserve (when it
// records), the admission entry, the response, Finish, and (unless lost)
// the completed entry naming the recording.
func (e *env) request(t *testing.T, reqID string, record, complete bool) string {
	t.Helper()
	ctx := context.Background()
	var c *recording.Capture
	if record {
		var err error
		if c, err = e.rec.Reserve(recording.Info{RequestID: reqID, Principal: "alice", Level: recording.LevelFull}); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := e.log.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: reqID, Route: "chat"}); err != nil {
		t.Fatal(err)
	}
	done := &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: reqID, Route: "chat", Status: 200}
	if record {
		c.Request(recording.ForwardedRequest{Method: "POST", Path: "/v1/chat/completions"})
		c.WriteHeader(200, http.Header{"Content-Type": {"application/json"}})
		c.Write([]byte(`{"answer":"` + reqID + `"}`))
		res := c.Finish(ctx)
		if res.Outcome != recording.OutcomeStored {
			t.Fatal(res.Err)
		}
		done.Details = map[string]any{"recording": map[string]any{"id": res.ID, "digest": res.Digest.String(), "outcome": "stored", "level": "full"}}
	}
	if complete {
		if _, err := e.log.Append(ctx, done); err != nil {
			t.Fatal(err)
		}
	}
	return c.ID()
}

// TestFind: the catalogue has no request-id index, so a request's
// recordings are found through its audit entries — the completed entry
// names the recording; a recording whose completed entry was never
// written (the gateway stopped in between) is found near its admission.
func TestFind(t *testing.T) {
	e := newEnv(t)
	named := e.request(t, "req-named", true, true)
	lost := e.request(t, "req-lost", true, false)
	e.request(t, "req-unrecorded", false, true)
	reused1 := e.request(t, "req-reused", true, true)
	reused2 := e.request(t, "req-reused", true, false)
	for range 5 { // other requests' recordings around them
		e.request(t, "req-other", true, true)
	}
	for _, tc := range []struct {
		reqID string
		want  []string
	}{
		{"req-named", []string{named}},
		{"req-lost", []string{lost}},
		{"req-unrecorded", nil},
		{"req-reused", []string{reused1, reused2}},
		{"req-nobody", nil},
	} {
		got, err := recordingcheck.Find(context.Background(), e.rec, e.log, tc.reqID)
		if err != nil {
			t.Fatalf("Find(%s): %v", tc.reqID, err)
		}
		var ids []string
		for _, g := range got {
			if g.RequestID != tc.reqID {
				t.Errorf("Find(%s) returned recording %s of request %s", tc.reqID, g.ID, g.RequestID)
			}
			ids = append(ids, g.ID)
		}
		if fmt.Sprint(ids) != fmt.Sprint(tc.want) {
			t.Errorf("Find(%s) = %v, want %v", tc.reqID, ids, tc.want)
		}
		// Without the audit log, the catalogue scan finds the same.
		all, err := recordingcheck.Find(context.Background(), e.rec, nil, tc.reqID)
		if err != nil {
			t.Fatal(err)
		}
		if len(all) != len(tc.want) {
			t.Errorf("Find(%s) without the log: %d recordings, want %d", tc.reqID, len(all), len(tc.want))
		}
	}
}
