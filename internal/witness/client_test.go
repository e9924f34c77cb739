package witness_test

import (
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/witness"
	"github.com/wardenhq/warden/internal/witness/witnesstest"
)

// TestClientProtocol walks the add-checkpoint protocol against a witness:
// first checkpoint (old 0), extension with a proof, the same size again,
// a stale old size (409 with the witness's size), a fork (422).
func TestClientProtocol(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	w := witnesstest.New(t, "w1", l.vkey)
	c := &witness.Client{URL: w.URL + "/", Key: mustVerifier(t, w.Key)}
	ctx := context.Background()

	cp5 := l.add(t, 5)
	co, err := c.AddCheckpoint(ctx, 0, nil, cp5, l.ver)
	if err != nil {
		t.Fatal(err)
	}
	if co.Size != 5 || len(co.Sigs) != 1 || co.Sigs[0].Witness != "w1" || time.Since(co.Sigs[0].Time) > time.Hour {
		t.Fatalf("cosigned = %+v", co)
	}
	req := string(w.LastRequest())
	if !strings.HasPrefix(req, "old 0\n\nwarden-audit\n5\n") || !strings.HasSuffix(req, string(cp5.Note)) {
		t.Fatalf("request body = %q", req)
	}

	cp12 := l.add(t, 7)
	proof, _ := l.ConsistencyProof(ctx, 5, 12)
	if _, err := c.AddCheckpoint(ctx, 5, proof, cp12, l.ver); err != nil {
		t.Fatal(err)
	}
	if lines := strings.Split(string(w.LastRequest()), "\n"); lines[0] != "old 5" || len(lines[1]) != 44 || lines[len(proof)+1] != "" {
		t.Fatalf("request with proof = %q", w.LastRequest())
	}
	// The same size again: cosigned again (freshness).
	if _, err := c.AddCheckpoint(ctx, 12, nil, cp12, l.ver); err != nil {
		t.Fatalf("same size again: %v", err)
	}
	// A stale old size: 409 with the witness's size.
	cp20 := l.add(t, 8)
	proof, _ = l.ConsistencyProof(ctx, 5, 20)
	_, err = c.AddCheckpoint(ctx, 5, proof, cp20, l.ver)
	var ce *witness.ConflictError
	if !errors.As(err, &ce) || ce.Size != 12 {
		t.Fatalf("stale old size: %v, want a ConflictError with size 12", err)
	}
	// A rewritten history: the proof from 12 does not verify.
	cpFork := l.rewrite(t, 10)
	proof, _ = l.ConsistencyProof(ctx, 12, cpFork.Size)
	if _, err := c.AddCheckpoint(ctx, 12, proof, cpFork, l.ver); !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("fork: %v, want ErrInconsistent", err)
	}
	if w.Size("warden-audit") != 12 {
		t.Fatalf("the witness moved to %d after refusing", w.Size("warden-audit"))
	}
	// A forked tree of the witness's own size: 422 too.
	cpFork12 := l.truncate(t, 12)
	if _, err := c.AddCheckpoint(ctx, 12, nil, cpFork12, l.ver); !errors.Is(err, witness.ErrInconsistent) {
		t.Fatalf("same size, other hash: %v, want ErrInconsistent", err)
	}
	// Old size beyond the checkpoint is refused before sending.
	if _, err := c.AddCheckpoint(ctx, 13, nil, cpFork12, l.ver); err == nil {
		t.Fatal("old size > size was sent")
	}
}

func TestClientRefusals(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	other := newTestLog(t, "warden-audit") // same origin, another key
	w := witnesstest.New(t, "w1", l.vkey)
	ctx := context.Background()
	cp := l.add(t, 3)

	c := &witness.Client{URL: w.URL, Key: mustVerifier(t, w.Key)}
	if _, err := c.AddCheckpoint(ctx, 0, nil, other.add(t, 3), other.ver); !errors.Is(err, witness.ErrForbidden) {
		t.Fatalf("checkpoint signed by an untrusted key: %v, want ErrForbidden", err)
	}
	stranger := newTestLog(t, "another-log")
	if _, err := c.AddCheckpoint(ctx, 0, nil, stranger.add(t, 1), stranger.ver); !errors.Is(err, witness.ErrUnknownLog) {
		t.Fatalf("unknown origin: %v, want ErrUnknownLog", err)
	}

	// The witness answers with a key other than the one configured.
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	wrong, _ := witness.VerifierKey("w1", pub)
	cw := &witness.Client{URL: w.URL, Key: mustVerifier(t, wrong)}
	if _, err := cw.AddCheckpoint(ctx, 0, nil, cp, l.ver); !errors.Is(err, witness.ErrBadResponse) {
		t.Fatalf("cosignature by another key: %v, want ErrBadResponse", err)
	}

	for _, tc := range []struct {
		status int
		want   error
	}{
		{http.StatusBadRequest, witness.ErrBadRequest},
		{http.StatusTooManyRequests, witness.ErrPushback},
		{http.StatusNotFound, witness.ErrUnknownLog},
		{http.StatusForbidden, witness.ErrForbidden},
		{http.StatusUnprocessableEntity, witness.ErrInconsistent},
	} {
		w.Fail(tc.status)
		if _, err := c.AddCheckpoint(ctx, 0, nil, cp, l.ver); !errors.Is(err, tc.want) {
			t.Errorf("status %d: %v, want %v", tc.status, err, tc.want)
		}
	}
	w.Fail(http.StatusServiceUnavailable)
	var se *witness.StatusError
	if _, err := c.AddCheckpoint(ctx, 0, nil, cp, l.ver); !errors.As(err, &se) || se.Code != 503 {
		t.Fatalf("503: %v", err)
	}
	w.Fail(0)

	// Lying answers: not signature lines, a replayed cosignature of
	// another checkpoint, a huge body.
	// (The witness accepted cw's call: it is at size 3.)
	good, err := c.AddCheckpoint(ctx, 3, nil, cp, l.ver)
	if err != nil {
		t.Fatal(err)
	}
	replay := []byte(good.Sigs[0].Line)
	l.add(t, 1)
	cp4, _ := l.Latest(ctx)
	proof, _ := l.ConsistencyProof(ctx, 3, 4)
	for name, body := range map[string][]byte{
		"garbage":  []byte("hello\n"),
		"empty":    nil,
		"no final": []byte(strings.TrimSuffix(string(replay), "\n")),
		"replayed": replay,
		"huge":     []byte(strings.Repeat("— w1 AAAA\n", 10000)),
	} {
		w.Answer(func() []byte { return body })
		if _, err := c.AddCheckpoint(ctx, 3, proof, cp4, l.ver); !errors.Is(err, witness.ErrBadResponse) {
			t.Errorf("%s answer: %v, want ErrBadResponse", name, err)
		}
	}
	w.Answer(nil)
}

// TestClientConflictBody: a 409 whose body is not a size is an error, not
// a size the client would trust. (A size without its final newline is
// accepted: it only sets the old size of the next attempt.)
func TestClientConflictBody(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	cp := l.add(t, 2)
	for _, body := range []string{"", "-1\n", "012\n", "12\n13\n", "x\n", "99999999999999999999\n"} {
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			w.WriteHeader(http.StatusConflict)
			w.Write([]byte(body))
		}))
		c := &witness.Client{URL: srv.URL, Key: mustVerifier(t, mustKey(t))}
		_, err := c.AddCheckpoint(context.Background(), 0, nil, cp, l.ver)
		var ce *witness.ConflictError
		var se *witness.StatusError
		if errors.As(err, &ce) || !errors.As(err, &se) {
			t.Errorf("409 body %q: %v", body, err)
		}
		srv.Close()
	}
}

func mustKey(t *testing.T) string {
	pub, _, _ := ed25519.GenerateKey(rand.Reader)
	k, err := witness.VerifierKey("w", pub)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// TestClientTimeout: a witness that never answers costs at most the
// timeout.
func TestClientTimeout(t *testing.T) {
	block := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-block }))
	defer srv.Close()
	defer close(block)
	l := newTestLog(t, "warden-audit")
	c := &witness.Client{URL: srv.URL, Key: mustVerifier(t, mustKey(t)), Timeout: 100 * time.Millisecond}
	_, err := c.AddCheckpoint(context.Background(), 0, nil, l.add(t, 1), l.ver)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v, want a deadline error", err)
	}
}

func TestClientProofTooLong(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	c := &witness.Client{URL: "http://127.0.0.1:1", Key: mustVerifier(t, mustKey(t))}
	cp := l.add(t, 2)
	if _, err := c.AddCheckpoint(context.Background(), 1, make(tlog.TreeProof, 64), cp, l.ver); err == nil {
		t.Fatal("a 64-hash proof was sent")
	}
}
