package console_test

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/console"
	"github.com/wardenhq/warden/internal/devstack"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// streamWords are the deltas of alice's recorded stream: plain words and
// every injection payload, which the page must show as text.
var streamWords = append([]string{"Hello ", "alice, ", "your card is [REDACTED:CREDIT_CARD]. "}, xss...)

// replayEnv is env with what the request page and the overview read
// beyond the log: a recorder holding alice's streamed chat (recorded in
// full, named by its terminal entry) and an erased recording, a witness
// that cosigned the log's checkpoint, and the export status. Its server
// and console replace env's (same log, issuer and approvals).
type replayEnv struct {
	*env
	rec *recording.Recorder
	// streamID and erasedID are the request ids of the two recordings;
	// streamSeq is the stream's terminal entry.
	streamID, erasedID string
	streamSeq          int64
	witness            *witnesstest.Witness
}

// newReplayEnv builds a replayEnv; withWitness false leaves witnessing
// unconfigured.
func newReplayEnv(t *testing.T, withWitness bool) *replayEnv {
	t.Helper()
	ctx := context.Background()
	e := &replayEnv{env: newEnv(t), streamID: "req-stream-1", erasedID: "req-erased-1"}
	rc := recording.Config{}
	rc.SetDefaults()
	rc.Resolve(e.dir)
	cat, err := sqlite.OpenRecordingCatalog(ctx, rc.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	if e.rec, err = recording.Open(ctx, rc, cat, recording.Options{}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rec.Close() })

	e.streamSeq = e.record(e.streamID, streamWords, 60*time.Millisecond)
	e.record(e.erasedID, []string{"secret answer"}, 0)
	if _, err := e.rec.Erase(ctx, recording.Selector{RequestID: e.erasedID}, "carol", "GDPR erasure request #42"); err != nil {
		t.Fatal(err)
	}
	e.waitCheckpoint(e.streamSeq)

	opts := console.Options{
		Config: console.Config{Issuer: e.issuerURL(), ClientID: devstack.ConsoleClientID},
		Roles:  console.Roles{Auditor: []string{"ml-admins", "ml-approvers"}, Admin: []string{"ml-admins"}},
		Audit:  e.audit, Approvals: e.svc, Policy: e.pol, Recordings: e.rec, Logger: slog.New(slog.DiscardHandler),
	}
	if withWitness {
		opts.Witnessing = e.cosign()
	}
	xs, err := export.NewService(export.NewLogSource(e.audit.Store(), export.LogSourceOptions{}), export.ServiceOptions{
		Options: export.Options{Origin: e.audit.Verifier().Name()}, Sinks: []string{"siem"},
		Targets: func() ([]export.Target, error) { return nil, nil },
	})
	if err != nil {
		t.Fatal(err)
	}
	opts.Export = xs
	e.serve(opts)
	return e
}

// issuerURL is the demo issuer env's console logs in at.
func (e *env) issuerURL() string { return e.princ["alice"].Issuer }

// serve replaces env's server with one running a console built from o
// (PublicURL set to the new server).
func (e *env) serve(o console.Options) {
	srv, srvURL := unstartedServer(e.t)
	o.Config.PublicURL = srvURL
	con, err := console.New(o)
	if err != nil {
		e.t.Fatal(err)
	}
	srv.Config.Handler = admin.New(admin.Options{Console: con, Audit: e.audit, Logger: slog.New(slog.DiscardHandler),
		Authenticators: []admin.Authenticator{con.Authenticator()},
		Config:         admin.Config{Roles: admin.Roles{Auditor: o.Roles.Auditor, Admin: o.Roles.Admin}}})
	srv.Start()
	e.srv, e.con = srv, con
}

// waitCheckpoint waits until a checkpoint covers seq.
func (e *env) waitCheckpoint(seq int64) {
	e.t.Helper()
	// The stored checkpoint (what witnesses cosign), not only the
	// log's in-memory head.
	for deadline := time.Now().Add(time.Minute); ; {
		cp, err := e.audit.Store().LatestCheckpoint(context.Background())
		if err == nil && cp.Size > seq {
			return
		}
		if time.Now().After(deadline) {
			e.t.Fatalf("no stored checkpoint covers entry %d (%d, %v)", seq, cp.Size, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// record captures a streamed chat answer of the given deltas, gap apart,
// through the real recorder, and writes the request's admitted and
// terminal entries (naming the recording, as the gateway does). It
// returns the terminal entry's seq.
func (e *replayEnv) record(requestID string, deltas []string, gap time.Duration) int64 {
	e.t.Helper()
	ctx := context.Background()
	start := time.Now()
	c, err := e.rec.Reserve(recording.Info{RequestID: requestID, Principal: "alice", Route: "openai", Start: start,
		Level: recording.LevelFull, RawRequest: true})
	if err != nil {
		e.t.Fatal(err)
	}
	body := `{"model":"demo","stream":true,"messages":[{"role":"user","content":"Show me the customer record ` + strings.ReplaceAll(xss[0], `"`, `\"`) + `"}]}`
	c.Request(recording.ForwardedRequest{Method: "POST", Scheme: "http", Host: "gw", Path: "/v1/chat/completions",
		Header: http.Header{"Content-Type": {"application/json"}}, Body: []byte(body)})
	c.WriteHeader(200, http.Header{"Content-Type": {"text/event-stream"}})
	for _, d := range deltas {
		time.Sleep(gap)
		b, _ := json.Marshal(map[string]any{"choices": []any{map[string]any{"delta": map[string]any{"content": d}}}})
		c.Write([]byte("data: " + string(b) + "\n\n"))
	}
	c.Write([]byte("data: [DONE]\n\n"))
	res := c.Finish(ctx)
	if res.Outcome != recording.OutcomeStored {
		e.t.Fatalf("recording %s: %v", requestID, res.Err)
	}
	p := e.princ["alice"]
	if _, err := e.audit.Append(ctx, &audit.Entry{Kind: audit.KindRequestAdmitted, RequestID: requestID, Principal: p, Route: "openai",
		Model: "demo", Method: "POST", Path: "/v1/chat/completions", Decision: &audit.Decision{Action: "allow", Rule: "chat"}}); err != nil {
		e.t.Fatal(err)
	}
	ref, err := e.audit.Append(ctx, &audit.Entry{Kind: audit.KindRequestCompleted, RequestID: requestID, Principal: p, Route: "openai",
		Model: "demo", Status: 200, Outcome: "ok",
		Details: map[string]any{"recording": map[string]any{"id": res.ID, "digest": res.Digest.String(), "level": "full", "outcome": "stored"}}})
	if err != nil {
		e.t.Fatal(err)
	}
	return ref.Seq
}

// cosign has a test witness (the protocol as the spec words it, over
// HTTP) cosign the log's newest stored checkpoint through the real
// submitter, which keeps the cosignature in a SQLite store.
func (e *replayEnv) cosign() *console.Witnessing {
	e.t.Helper()
	ctx := context.Background()
	_, vpath := audit.KeyPaths(e.dir)
	vkey, err := os.ReadFile(vpath)
	if err != nil {
		e.t.Fatal(err)
	}
	e.witness = witnesstest.New(e.t, "witness.example", strings.TrimSpace(string(vkey)))
	st, err := sqlite.OpenCosignatures(ctx, e.dir+"/cosignatures.db")
	if err != nil {
		e.t.Fatal(err)
	}
	e.t.Cleanup(func() { st.Close() })
	pol := witness.Policy{CosignedFile: "-"}
	pol.SetDefaults()
	sub, err := witness.New(logSource{e.audit}, st, e.audit.Verifier(), []witness.Endpoint{{URL: e.witness.URL, Key: e.witness.Key}}, pol)
	if err != nil {
		e.t.Fatal(err)
	}
	for _, r := range sub.Flush(ctx) {
		if r.Err != nil || r.Outcome != witness.ResultCosigned {
			e.t.Fatalf("the witness did not cosign: %s %v", r.Outcome, r.Err)
		}
	}
	return &console.Witnessing{Store: st, Witnesses: sub.Verifiers()}
}

// logSource is what the witness submitter reads of the audit log: its
// newest stored checkpoint and consistency proofs.
type logSource struct{ l *audit.Log }

func (s logSource) Latest(ctx context.Context) (witness.Checkpoint, error) {
	c, err := s.l.Store().LatestCheckpoint(ctx)
	if err != nil {
		return witness.Checkpoint{}, err
	}
	return witness.Checkpoint{Origin: s.l.Verifier().Name(), Size: c.Size, Hash: c.Hash, Note: c.Note}, nil
}

func (s logSource) ConsistencyProof(ctx context.Context, old, new int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(new, old, tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.l.Store().ReadHashes(ctx, idx) }))
}
