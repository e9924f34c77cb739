package recording_test

import (
	"bytes"
	"context"
	"errors"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
)

var chatBody = `{"model":"m","stream":true,"messages":[{"role":"user","content":"my card is 4111 1111 1111 1111"}]}`

func redactCards(b []byte) ([]byte, error) {
	return bytes.ReplaceAll(b, []byte("4111 1111 1111 1111"), []byte("[REDACTED:CREDIT_CARD]")), nil
}

// TestRecordStreamThroughProxy: a streamed answer is recorded exactly as
// the client received it, with one mark per event, and reads back with
// the digest Finish reported.
func TestRecordStreamThroughProxy(t *testing.T) {
	e := newEnv(t, nil, func(o *recording.Options) { o.StripHeaders = []string{"x-tenant-assertion"} })
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{redact: redactCards})
	got := call(t, g, "/v1/chat/completions?stream=1&n=8&gap=2ms&api_key=sk-live-123", "req-stream-1", "alice", chatBody,
		map[string]string{"Authorization": "Bearer caller-token-abc", "Cookie": "sid=cookie-secret", "X-Api-Key": "key-secret-xyz"})
	res := result(t, g)
	if res.Outcome != recording.OutcomeStored || res.Err != nil {
		t.Fatalf("Finish: %+v", res)
	}
	if got.events != 9 || res.Events != 9 {
		t.Errorf("client saw %d events, recording counted %d; want 9", got.events, res.Events)
	}
	rec, entry, err := e.rec.Load(testCtx(t), res.ID, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	if entry.Digest != res.Digest || entry.Principal != "alice" || entry.RequestID != "req-stream-1" {
		t.Errorf("catalogue entry %+v does not match result %+v", entry, res)
	}
	if !bytes.Equal(rec.ResponseBody, got.body) {
		t.Errorf("recorded body differs from what the client received:\n%q\n%q", rec.ResponseBody, got.body)
	}
	if m := rec.Meta; m.Response.Events != 9 || len(rec.Marks) != 9 || !m.Response.SSE || m.Response.Status != 200 {
		t.Errorf("meta %+v, %d marks", m.Response, len(rec.Marks))
	}
	for i, ev := range rec.Events() {
		if !strings.HasPrefix(string(ev.Data), "data: ") || !strings.HasSuffix(string(ev.Data), "\n\n") {
			t.Errorf("event %d is not one SSE event: %q", i, ev.Data)
		}
		if i > 0 && ev.At < rec.Events()[i-1].At {
			t.Errorf("event %d goes back in time", i)
		}
	}
	if last := rec.Events()[8].At; last < 14*time.Millisecond {
		t.Errorf("last event at %v; the upstream spaced 8 events 2ms apart", last)
	}
	// Credentials: never in the recording, in any form.
	var canon bytes.Buffer
	if _, err := rec.Encode(&canon); err != nil {
		t.Fatal(err)
	}
	for _, secret := range []string{"caller-token-abc", "cookie-secret", "key-secret-xyz", "signed.assertion.jwt", "tenant.assertion.secret", "sk-live-123", "4111 1111 1111 1111", "upstream-secret"} {
		if bytes.Contains(canon.Bytes(), []byte(secret)) {
			t.Errorf("the recording holds %q", secret)
		}
	}
	if rec.Meta.Request.Body != recording.BodyRedacted || !bytes.Contains(rec.RequestBody, []byte("[REDACTED:CREDIT_CARD]")) {
		t.Errorf("request body %s: %s", rec.Meta.Request.Body, rec.RequestBody)
	}
	if !strings.Contains(rec.Meta.Request.Query, "api_key=[REDACTED]") || !strings.Contains(rec.Meta.Request.Query, "stream=1") {
		t.Errorf("query %q", rec.Meta.Request.Query)
	}
	for _, f := range rec.Meta.Request.Header {
		if f.Name == "Connection" || f.Name == "Authorization" || f.Name == "X-Warden-Identity" {
			t.Errorf("header %s recorded", f.Name)
		}
	}
	// The stored object is sealed: neither the answer nor the request is
	// readable in it.
	obj := readObject(t, e, entry)
	if bytes.Contains(obj, []byte("tok3")) || bytes.Contains(obj, []byte("REDACTED")) {
		t.Error("the stored object holds plaintext")
	}
	if _, err := e.rec.Verify(testCtx(t), res.ID, res.Digest); err != nil {
		t.Errorf("Verify: %v", err)
	}
}

func readObject(t testing.TB, e *env, entry recording.Entry) []byte {
	t.Helper()
	rc, err := e.blobs.Get(testCtx(t), entry.Object)
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	b, _ := io.ReadAll(rc)
	return b
}

func TestRecordJSONAnswerAndModes(t *testing.T) {
	cases := []struct {
		name     string
		o        proxyOpts
		reqBody  recording.BodyMode
		respBody recording.BodyMode
		contains string
	}{
		{"full redacted", proxyOpts{redact: redactCards}, recording.BodyRedacted, recording.BodyFull, "[REDACTED:CREDIT_CARD]"},
		{"full raw", proxyOpts{raw: true}, recording.BodyRaw, recording.BodyFull, "4111 1111 1111 1111"},
		{"full without a redactor", proxyOpts{}, recording.BodyOmitted, recording.BodyFull, ""},
		{"redactor fails", proxyOpts{redact: func([]byte) ([]byte, error) { return nil, errors.New("boom") }}, recording.BodyOmitted, recording.BodyFull, ""},
		{"metadata", proxyOpts{level: recording.LevelMetadata, redact: redactCards}, recording.BodyOmitted, recording.BodyOmitted, ""},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, nil, nil)
			g := newGatewayProxy(t, e.rec, upstream(t), tc.o)
			got := call(t, g, "/v1/chat/completions", "req-json", "bob", chatBody, nil)
			res := result(t, g)
			if res.Outcome != recording.OutcomeStored {
				t.Fatalf("Finish: %+v", res)
			}
			rec, _, err := e.rec.Load(testCtx(t), res.ID, 1<<20)
			if err != nil {
				t.Fatal(err)
			}
			m := rec.Meta
			if m.Request.Body != tc.reqBody || m.Response.Body != tc.respBody {
				t.Errorf("bodies %s/%s, want %s/%s", m.Request.Body, m.Response.Body, tc.reqBody, tc.respBody)
			}
			if m.Request.BodySize != int64(len(chatBody)) || m.Response.BodySize != int64(len(got.body)) {
				t.Errorf("sizes %d/%d", m.Request.BodySize, m.Response.BodySize)
			}
			if tc.contains != "" && !bytes.Contains(rec.RequestBody, []byte(tc.contains)) {
				t.Errorf("request body %q lacks %q", rec.RequestBody, tc.contains)
			}
			if tc.reqBody == recording.BodyOmitted && len(rec.RequestBody) != 0 {
				t.Errorf("omitted request body holds %q", rec.RequestBody)
			}
			if tc.respBody == recording.BodyFull && !bytes.Equal(rec.ResponseBody, got.body) {
				t.Errorf("response %q, client got %q", rec.ResponseBody, got.body)
			}
			if tc.respBody == recording.BodyOmitted && (len(rec.ResponseBody) != 0 || len(rec.Marks) == 0) {
				t.Errorf("metadata recording: body %q, %d marks", rec.ResponseBody, len(rec.Marks))
			}
			for _, f := range m.Response.Header {
				if f.Name == "Set-Cookie" {
					t.Error("Set-Cookie recorded")
				}
			}
		})
	}
}

// flipByte changes one byte of a stored object where it lives (in the
// pack file on disk, or in the bucket), as an attacker with write access
// to the storage would.
func flipByte(t *testing.T, e *env, entry recording.Entry, at func(n int) int) {
	t.Helper()
	obj := readObject(t, e, entry)
	obj[at(len(obj))] ^= 0x01
	overwriteObject(t, e, entry, obj)
}

// overwriteObject replaces a stored object's bytes in place.
func overwriteObject(t *testing.T, e *env, entry recording.Entry, data []byte) {
	t.Helper()
	if fs, ok := e.blobs.(*recording.FSStore); ok {
		path, off, size, err := fs.Locate(entry.Object)
		if err != nil || size != int64(len(data)) {
			t.Fatalf("Locate: %v (%d bytes for %d)", err, size, len(data))
		}
		f, err := os.OpenFile(path, os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		if _, err := f.WriteAt(data, off); err != nil {
			t.Fatal(err)
		}
		return
	}
	loc, err := e.blobs.Put(testCtx(t), entry.Object, bytes.NewReader(data), int64(len(data)))
	if err != nil || loc != entry.Object {
		t.Fatalf("overwrite %s: %v (%s)", entry.Object, err, loc)
	}
}

func testByteFlipDetected(t *testing.T, e *env) {
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{redact: redactCards})
	var ids []string
	var digests []recording.Digest
	for i := range 3 {
		call(t, g, "/v1/chat/completions?stream=1&n=20", "req-flip", "alice", chatBody, nil)
		res := result(t, g)
		if res.Outcome != recording.OutcomeStored {
			t.Fatalf("recording %d: %+v", i, res)
		}
		ids, digests = append(ids, res.ID), append(digests, res.Digest)
	}
	positions := []func(int) int{
		func(n int) int { return 3 },     // header
		func(n int) int { return n / 2 }, // ciphertext
		func(n int) int { return n - 1 }, // final tag
	}
	for i, id := range ids {
		entry, err := e.rec.Get(testCtx(t), id)
		if err != nil {
			t.Fatal(err)
		}
		flipByte(t, e, entry, positions[i])
		if _, err := e.rec.Verify(testCtx(t), id, digests[i]); !recording.IsCorrupt(err) {
			t.Errorf("flip %d: Verify = %v, want CorruptError", i, err)
		}
		if _, _, err := e.rec.Load(testCtx(t), id, 1<<20); !recording.IsCorrupt(err) {
			t.Errorf("flip %d: Load = %v, want CorruptError", i, err)
		}
	}
	var reports []string
	err := e.rec.VerifyAll(testCtx(t), func(en recording.Entry, err error) error {
		if recording.IsCorrupt(err) {
			reports = append(reports, en.ID)
		}
		return nil
	})
	if err != nil || len(reports) != 3 {
		t.Errorf("VerifyAll reported %d corrupt recordings, %v; want 3", len(reports), err)
	}
}

func TestByteFlipDetectedFS(t *testing.T) { testByteFlipDetected(t, newEnv(t, nil, nil)) }

func TestByteFlipDetectedS3(t *testing.T) {
	srv := startS3(t)
	testByteFlipDetected(t, newEnv(t, srv.Store(t), nil))
}

// TestDigestMismatchDetected: an intact object whose digest differs from
// the one the audit log committed to (a swapped catalogue row, a replaced
// recording) is reported.
func TestDigestMismatchDetected(t *testing.T) {
	e := newEnv(t, nil, nil)
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{})
	call(t, g, "/v1/chat/completions", "req-d", "alice", chatBody, nil)
	res := result(t, g)
	other := res.Digest
	other[0] ^= 1
	if _, err := e.rec.Verify(testCtx(t), res.ID, other); !recording.IsCorrupt(err) {
		t.Errorf("Verify against another digest: %v", err)
	}
	if _, err := e.rec.Verify(testCtx(t), res.ID, res.Digest); err != nil {
		t.Errorf("Verify against its digest: %v", err)
	}
	// A missing object is corruption too, not "not found".
	entry, _ := e.rec.Get(testCtx(t), res.ID)
	e.blobs.Delete(testCtx(t), entry.Object)
	if _, err := e.rec.Verify(testCtx(t), res.ID, res.Digest); !recording.IsCorrupt(err) {
		t.Errorf("Verify of a deleted object: %v", err)
	}
}

// erasureLog is an ErasureLog that remembers (and can refuse).
type erasureLog struct {
	mu   sync.Mutex
	got  []recording.Erased
	fail error
}

func (l *erasureLog) RecordErasure(_ context.Context, e recording.Erased) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.fail != nil {
		return l.fail
	}
	l.got = append(l.got, e)
	return nil
}

// TestEraseCryptoShreds: after erasing alice's recordings, their content
// cannot be read back — not even from a copy of the object kept elsewhere
// (S3 versioning, a bucket backup) — while bob's still can, the digests
// stay, and the erasure log names who, when and why.
func TestEraseCryptoShreds(t *testing.T) {
	elog := &erasureLog{}
	e := newEnv(t, nil, func(o *recording.Options) { o.ErasureLog = elog })
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{redact: redactCards})
	var alice []recording.Result
	for i := range 2 {
		call(t, g, "/v1/chat/completions?stream=1", "req-a", "alice", chatBody, nil)
		alice = append(alice, result(t, g))
		_ = i
	}
	call(t, g, "/v1/chat/completions?stream=1", "req-b", "bob", chatBody, nil)
	bob := result(t, g)
	entry, _ := e.rec.Get(testCtx(t), alice[0].ID)
	kept := readObject(t, e, entry)

	erased, err := e.rec.Erase(testCtx(t), recording.Selector{Principal: "alice"}, "admin:carol", "GDPR erasure request 2026-17")
	if err != nil {
		t.Fatal(err)
	}
	if len(erased) != 2 || len(elog.got) != 2 {
		t.Fatalf("erased %d, logged %d; want 2", len(erased), len(elog.got))
	}
	for _, er := range elog.got {
		if er.By != "admin:carol" || er.Reason != "GDPR erasure request 2026-17" || er.At.IsZero() || er.Principal != "alice" || er.Digest.IsZero() {
			t.Errorf("erasure entry %+v", er)
		}
	}
	// Restore the object as a versioned bucket or a backup would still
	// have it.
	overwriteObject(t, e, entry, kept)
	for _, r := range alice {
		if _, _, err := e.rec.Load(testCtx(t), r.ID, 1<<20); !errors.Is(err, recording.ErrErased) {
			t.Errorf("Load of an erased recording: %v, want ErrErased", err)
		}
		en, err := e.rec.Verify(testCtx(t), r.ID, r.Digest)
		if !errors.Is(err, recording.ErrErased) || en.Digest != r.Digest || en.WrappedKey != nil || en.Erasure == nil {
			t.Errorf("Verify of an erased recording: %+v, %v", en, err)
		}
	}
	// No key in the catalogue opens the kept object any more.
	es, _ := e.cat.List(testCtx(t), recording.Filter{})
	for _, en := range es {
		if en.ID == entry.ID && en.WrappedKey != nil {
			t.Error("the erased recording's wrapped key is still in the catalogue")
		}
	}
	if _, _, err := e.rec.Load(testCtx(t), bob.ID, 1<<20); err != nil {
		t.Errorf("bob's recording after alice's erasure: %v", err)
	}
	// Erasing again erases nothing new.
	again, err := e.rec.Erase(testCtx(t), recording.Selector{Principal: "alice"}, "admin:carol", "again")
	if err != nil || len(again) != 0 {
		t.Errorf("second erasure: %d, %v", len(again), err)
	}
}

func TestEraseRefusals(t *testing.T) {
	elog := &erasureLog{fail: errors.New("audit log unavailable")}
	e := newEnv(t, nil, func(o *recording.Options) { o.ErasureLog = elog })
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{})
	call(t, g, "/v1/chat/completions", "req-x", "alice", chatBody, nil)
	res := result(t, g)
	if _, err := e.rec.Erase(testCtx(t), recording.Selector{Principal: "alice"}, "admin", "reason"); err == nil {
		t.Fatal("erasure succeeded although it could not be logged")
	}
	if _, _, err := e.rec.Load(testCtx(t), res.ID, 1<<20); err != nil {
		t.Errorf("an unlogged erasure destroyed the key: %v", err)
	}
	for _, tc := range []struct {
		sel        recording.Selector
		by, reason string
	}{
		{recording.Selector{}, "admin", "everything"},
		{recording.Selector{Before: time.Now()}, "admin", "old"},
		{recording.Selector{Principal: "alice"}, "", "why"},
		{recording.Selector{Principal: "alice"}, "admin", ""},
	} {
		if _, err := e.rec.Erase(testCtx(t), tc.sel, tc.by, tc.reason); err == nil {
			t.Errorf("Erase(%+v, %q, %q) accepted", tc.sel, tc.by, tc.reason)
		}
	}
}

// TestEraseBefore: --before erases only older recordings.
func TestEraseBefore(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	e := newEnv(t, nil, func(o *recording.Options) { o.Now = now })
	var ids []string
	for day := range 3 {
		mu.Lock()
		clock = time.Date(2026, 1, 1+day, 0, 0, 0, 0, time.UTC)
		mu.Unlock()
		c, err := e.rec.Reserve(recording.Info{RequestID: "r", Principal: "alice", Level: recording.LevelFull})
		if err != nil {
			t.Fatal(err)
		}
		c.WriteHeader(200, nil)
		c.Write([]byte("answer"))
		res := c.Finish(testCtx(t))
		if res.Outcome != recording.OutcomeStored {
			t.Fatal(res.Err)
		}
		ids = append(ids, res.ID)
	}
	erased, err := e.rec.Erase(testCtx(t), recording.Selector{Principal: "alice", Before: time.Date(2026, 1, 2, 12, 0, 0, 0, time.UTC)}, "admin", "old ones")
	if err != nil || len(erased) != 2 || erased[0].ID != ids[0] || erased[1].ID != ids[1] {
		t.Fatalf("erased %+v, %v", erased, err)
	}
	if _, _, err := e.rec.Load(testCtx(t), ids[2], 1<<20); err != nil {
		t.Errorf("the newest recording: %v", err)
	}
}

func TestRetentionSweep(t *testing.T) {
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	var mu sync.Mutex
	now := func() time.Time { mu.Lock(); defer mu.Unlock(); return clock }
	elog := &erasureLog{}
	e := newEnv(t, nil, func(o *recording.Options) {
		o.Now, o.Retention, o.SweepInterval, o.ErasureLog = now, 24*time.Hour, time.Hour, elog
	})
	record := func() string {
		c, err := e.rec.Reserve(recording.Info{RequestID: "r", Principal: "p", Level: recording.LevelFull})
		if err != nil {
			t.Fatal(err)
		}
		c.Write([]byte("x"))
		res := c.Finish(testCtx(t))
		if res.Outcome != recording.OutcomeStored {
			t.Fatal(res.Err)
		}
		return res.ID
	}
	old := record()
	mu.Lock()
	clock = clock.Add(20 * time.Hour)
	mu.Unlock()
	young := record()
	mu.Lock()
	clock = clock.Add(5 * time.Hour) // old is 25h old, young 5h
	mu.Unlock()
	erased, err := e.rec.Sweep(testCtx(t))
	if err != nil || len(erased) != 1 || erased[0].ID != old {
		t.Fatalf("Sweep erased %+v, %v; want only the old one", erased, err)
	}
	if erased[0].By != recording.RetentionBy || !strings.Contains(erased[0].Reason, "24h0m0s") {
		t.Errorf("retention erasure %+v", erased[0])
	}
	if _, _, err := e.rec.Load(testCtx(t), young, 1<<20); err != nil {
		t.Errorf("young recording: %v", err)
	}
	if len(elog.got) != 1 {
		t.Errorf("the sweep logged %d erasures", len(elog.got))
	}
}

// TestStrictModeS3Down: with the S3 server stopped, Reserve refuses in
// strict mode (so the gateway answers 503 and forwards nothing), while
// best-effort serves and reports the recording as failed; when the server
// is back, recording resumes.
func TestStrictModeS3Down(t *testing.T) {
	srv := startS3(t)
	fast := func(o *recording.Options) {
		o.ProbeInterval, o.ProbeTimeout = 50*time.Millisecond, 500*time.Millisecond
	}
	strict := newEnv(t, srv.Store(t), fast)
	loose := newEnv(t, srv.Store(t), func(o *recording.Options) { fast(o); o.Mode = recording.BestEffort })
	up := upstream(t)
	gs := newGatewayProxy(t, strict.rec, up, proxyOpts{})
	gl := newGatewayProxy(t, loose.rec, up, proxyOpts{})

	if got := call(t, gs, "/v1/chat/completions?stream=1", "req-up", "alice", chatBody, nil); got.status != 200 {
		t.Fatalf("with S3 up: %d", got.status)
	}
	<-gs.forwarded
	if res := result(t, gs); res.Outcome != recording.OutcomeStored {
		t.Fatalf("with S3 up: %+v", res)
	}

	srv.Stop()
	waitFor(t, "strict recorder to see the outage", func() bool { return strict.rec.Ready() != nil })
	got := call(t, gs, "/v1/chat/completions?stream=1", "req-down", "alice", chatBody, nil)
	if got.status != 503 || !strings.Contains(string(got.body), "recording_unavailable") {
		t.Errorf("strict with S3 down: %d %s, want 503", got.status, got.body)
	}
	select {
	case <-gs.forwarded:
		t.Error("strict mode forwarded a request it could not record")
	default:
	}

	got = call(t, gl, "/v1/chat/completions?stream=1", "req-down", "alice", chatBody, nil)
	if got.status != 200 || got.events != 6 {
		t.Errorf("best effort with S3 down: %d, %d events", got.status, got.events)
	}
	if res := result(t, gl); res.Outcome != recording.OutcomeFailed || res.Err == nil {
		t.Errorf("best effort with S3 down: %+v, want failed", res)
	}

	srv.Restart(t)
	waitFor(t, "strict recorder to see S3 again", func() bool { return strict.rec.Ready() == nil })
	if got := call(t, gs, "/v1/chat/completions?stream=1", "req-back", "alice", chatBody, nil); got.status != 200 {
		t.Errorf("after S3 is back: %d", got.status)
	}
	if res := result(t, gs); res.Outcome != recording.OutcomeStored {
		t.Errorf("after S3 is back: %+v", res)
	}
}

// TestStrictModeFilesystemDown: the same with the filesystem store made
// unusable (its directory replaced by a file).
func TestStrictModeFilesystemDown(t *testing.T) {
	e := newEnv(t, nil, func(o *recording.Options) { o.ProbeInterval = 50 * time.Millisecond })
	dir := e.blobs.(*recording.FSStore).Root()
	if err := e.rec.Ready(); err != nil {
		t.Fatalf("healthy store not ready: %v", err)
	}
	os.RemoveAll(dir)
	os.WriteFile(dir, []byte("not a directory"), 0o600)
	waitFor(t, "the outage to be seen", func() bool { return e.rec.Ready() != nil })
	if _, err := e.rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelFull}); !errors.Is(err, recording.ErrUnavailable) {
		t.Errorf("Reserve with the store down: %v, want ErrUnavailable", err)
	}
	if c, err := e.rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelOff}); c != nil || err != nil {
		t.Errorf("level off: %v, %v; want nothing to record and no refusal", c, err)
	}
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// blockingStore is a BlobStore whose Put waits for release, and which
// counts every call (to show Reserve does no I/O).
type blockingStore struct {
	recording.BlobStore
	release chan struct{}
	mu      sync.Mutex
	calls   int
}

func (b *blockingStore) count() int { b.mu.Lock(); defer b.mu.Unlock(); return b.calls }

func (b *blockingStore) Put(ctx context.Context, key string, r io.Reader, n int64) (string, error) {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	select {
	case <-b.release:
	case <-ctx.Done():
		return "", ctx.Err()
	}
	return b.BlobStore.Put(ctx, key, r, n)
}

func (b *blockingStore) Probe(ctx context.Context) error {
	b.mu.Lock()
	b.calls++
	b.mu.Unlock()
	return b.BlobStore.Probe(ctx)
}

// TestClientNeverWaitsForTheStore: a store that hangs on Put does not
// delay the client (the whole answer arrives while the save is blocked),
// and Reserve touches no store at all.
func TestClientNeverWaitsForTheStore(t *testing.T) {
	fs, err := recording.NewFSStore(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	bs := &blockingStore{BlobStore: fs, release: make(chan struct{})}
	e := newEnv(t, bs, func(o *recording.Options) { o.ProbeInterval = time.Hour })
	before := bs.count()
	for range 1000 {
		c, err := e.rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelFull})
		if err != nil {
			t.Fatal(err)
		}
		c.Abort()
	}
	if bs.count() != before {
		t.Errorf("1000 Reserves made %d store calls; want none", bs.count()-before)
	}
	g := newGatewayProxy(t, e.rec, upstream(t), proxyOpts{})
	got := call(t, g, "/v1/chat/completions?stream=1&n=50", "req-block", "alice", chatBody, nil)
	if got.status != 200 || got.events != 51 {
		t.Fatalf("client got %d, %d events while the store was blocked", got.status, got.events)
	}
	select {
	case res := <-g.results:
		t.Fatalf("Finish returned %+v before the store was released", res)
	default:
	}
	close(bs.release)
	if res := result(t, g); res.Outcome != recording.OutcomeStored {
		t.Errorf("after release: %+v", res)
	}
}

// TestSpillFailureIsReportedNotFatal: when the spill directory vanishes
// mid-stream the client still gets everything; the recording fails.
func TestSpillFailureIsReportedNotFatal(t *testing.T) {
	spill := filepath.Join(t.TempDir(), "spill")
	e := newEnv(t, nil, func(o *recording.Options) {
		o.SpillDir, o.SpillThreshold, o.MemoryBudget, o.Mode = spill, 4096, 4096, recording.BestEffort
	})
	c, err := e.rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelFull})
	if err != nil {
		t.Fatal(err)
	}
	os.RemoveAll(spill)
	os.WriteFile(spill, nil, 0o600) // CreateTemp in it now fails
	c.WriteHeader(200, nil)
	for range 10 {
		c.Write(make([]byte, 1000))
	}
	res := c.Finish(testCtx(t))
	if res.Outcome != recording.OutcomeFailed || res.Err == nil {
		t.Errorf("Finish: %+v, want failed", res)
	}
	if e.rec.Ready() == nil {
		t.Error("a failed capture did not mark the recorder unready")
	}
}

func TestFinishTwiceAndAbort(t *testing.T) {
	e := newEnv(t, nil, nil)
	c, _ := e.rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelFull})
	c.Write([]byte("x"))
	if res := c.Finish(testCtx(t)); res.Outcome != recording.OutcomeStored {
		t.Fatal(res.Err)
	}
	if res := c.Finish(testCtx(t)); res.Outcome != recording.OutcomeFailed {
		t.Error("second Finish stored again")
	}
	c.Abort() // harmless after Finish
	a, _ := e.rec.Reserve(recording.Info{RequestID: "r2", Level: recording.LevelFull})
	a.Write([]byte("y"))
	a.Abort()
	if res := a.Finish(testCtx(t)); res.Outcome != recording.OutcomeFailed {
		t.Error("Finish after Abort stored")
	}
	es, _ := e.rec.Find(testCtx(t), "r2")
	if len(es) != 0 {
		t.Error("an aborted capture was stored")
	}
}

// TestFinishAroundClose: captures finishing while the recorder closes are
// each either stored — durably, in the catalogue — or failed, none hangs
// (builders and the committer stop only between jobs, and the committer
// commits what is queued), and a Finish after Close fails.
func TestFinishAroundClose(t *testing.T) {
	e := newEnv(t, nil, nil)
	var caps []*recording.Capture
	for i := range 24 {
		c, err := e.rec.Reserve(recording.Info{RequestID: "req-" + strings.Repeat("x", i+1), Level: recording.LevelFull})
		if err != nil {
			t.Fatal(err)
		}
		c.WriteHeader(200, http.Header{"Content-Type": {"application/json"}})
		c.Write([]byte(`{"answer":"hello"}`))
		caps = append(caps, c)
	}
	during, after := caps[:16], caps[16:]
	results := make([]recording.Result, len(during))
	var wg sync.WaitGroup
	for i, c := range during {
		wg.Add(1)
		go func() {
			defer wg.Done()
			results[i] = c.Finish(testCtx(t))
		}()
	}
	if err := e.rec.Close(); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	for _, res := range results {
		switch res.Outcome {
		case recording.OutcomeStored:
			if _, err := e.cat.Get(testCtx(t), res.ID); err != nil {
				t.Errorf("recording %s reported stored but not in the catalogue: %v", res.ID, err)
			}
		case recording.OutcomeFailed:
			if res.Err == nil {
				t.Errorf("recording %s failed without a reason", res.ID)
			}
		default:
			t.Errorf("recording %s: outcome %q", res.ID, res.Outcome)
		}
	}
	for _, c := range after {
		if res := c.Finish(testCtx(t)); res.Outcome != recording.OutcomeFailed {
			t.Errorf("Finish after Close: %q, want failed", res.Outcome)
		}
	}
}
