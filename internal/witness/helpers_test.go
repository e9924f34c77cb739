package witness_test

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"fmt"
	"sort"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/witness"
)

// testLog is an in-memory Merkle log with a signing key: the Source and
// TreeReader of these tests.
type testLog struct {
	mu     sync.Mutex
	signer note.Signer
	ver    note.Verifier
	vkey   string
	hashes []tlog.Hash
	n      int64
	latest witness.Checkpoint
	fork   int           // changes the records' content (a rewritten history)
	signed chan struct{} // closed and replaced at each new checkpoint
}

func newTestLog(t *testing.T, name string) *testLog {
	t.Helper()
	skey, vkey, err := note.GenerateKey(rand.Reader, name)
	if err != nil {
		t.Fatal(err)
	}
	s, err := note.NewSigner(skey)
	if err != nil {
		t.Fatal(err)
	}
	v, err := note.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return &testLog{signer: s, ver: v, vkey: vkey}
}

func (l *testLog) ReadHashes(idx []int64) ([]tlog.Hash, error) {
	out := make([]tlog.Hash, len(idx))
	for i, x := range idx {
		if x >= int64(len(l.hashes)) {
			return nil, fmt.Errorf("hash %d not stored", x)
		}
		out[i] = l.hashes[x]
	}
	return out, nil
}

// add appends k records and signs a checkpoint of the new size.
func (l *testLog) add(t *testing.T, k int) witness.Checkpoint {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	for i := 0; i < k; i++ {
		hs, err := tlog.StoredHashes(l.n, []byte(fmt.Sprintf("record %d fork %d", l.n, l.fork)), l)
		if err != nil {
			t.Fatal(err)
		}
		l.hashes = append(l.hashes, hs...)
		l.n++
	}
	return l.signLocked(t)
}

func (l *testLog) signLocked(t *testing.T) witness.Checkpoint {
	t.Helper()
	h, err := tlog.TreeHash(l.n, l)
	if err != nil {
		t.Fatal(err)
	}
	text := fmt.Sprintf("%s\n%d\n%s\ntime %s\n", l.signer.Name(), l.n, base64.StdEncoding.EncodeToString(h[:]), time.Now().UTC().Format(time.RFC3339Nano))
	msg, err := note.Sign(&note.Note{Text: text}, l.signer)
	if err != nil {
		t.Fatal(err)
	}
	l.latest = witness.Checkpoint{Origin: l.signer.Name(), Size: l.n, Hash: h, Note: msg}
	if l.signed != nil {
		close(l.signed)
	}
	l.signed = make(chan struct{})
	return l.latest
}

// waitingLog is a testLog that also implements witness.Waiter.
type waitingLog struct{ *testLog }

func (w waitingLog) WaitCheckpoint(ctx context.Context, after int64) (witness.Checkpoint, error) {
	for {
		w.mu.Lock()
		c, ch := w.latest, w.signed
		if ch == nil {
			w.signed = make(chan struct{})
			ch = w.signed
		}
		w.mu.Unlock()
		if c.Size > after {
			return c, nil
		}
		select {
		case <-ch:
		case <-ctx.Done():
			return witness.Checkpoint{}, ctx.Err()
		}
	}
}

// truncate cuts the log back to n records (a rollback) and signs a
// checkpoint of that size, as an operator with the key could.
func (l *testLog) truncate(t *testing.T, n int64) witness.Checkpoint {
	t.Helper()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.n = n
	l.hashes = l.hashes[:tlog.StoredHashCount(n)]
	return l.signLocked(t)
}

// rewrite replaces history from record from on with other content and
// re-signs: a fork.
func (l *testLog) rewrite(t *testing.T, from int64) witness.Checkpoint {
	t.Helper()
	n := l.n
	l.mu.Lock()
	l.n = from
	l.hashes = l.hashes[:tlog.StoredHashCount(from)]
	l.fork++
	l.mu.Unlock()
	return l.add(t, int(n-from))
}

func (l *testLog) Latest(context.Context) (witness.Checkpoint, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.latest, nil
}

func (l *testLog) ConsistencyProof(_ context.Context, old, new int64) (tlog.TreeProof, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.ProveTree(new, old, l)
}

func (l *testLog) Size(context.Context) (int64, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.n, nil
}

func (l *testLog) TreeHash(_ context.Context, n int64) (tlog.Hash, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return tlog.TreeHash(n, l)
}

// memStore is a witness.Store in memory.
type memStore struct {
	mu   sync.Mutex
	rows []witness.Cosignature
	fail error
}

func (m *memStore) PutCosignature(_ context.Context, c witness.Cosignature) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.fail != nil {
		return m.fail
	}
	for _, r := range m.rows {
		if r.Size == c.Size && r.Witness == c.Witness && r.KeyHash == c.KeyHash {
			return nil
		}
	}
	m.rows = append(m.rows, c)
	return nil
}

func (m *memStore) Cosignatures(_ context.Context, w string, before int64, limit int) ([]witness.Cosignature, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	var out []witness.Cosignature
	for _, r := range m.rows {
		if (w == "" || r.Witness == w) && (before <= 0 || r.Size < before) {
			out = append(out, r)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		if out[i].Size != out[j].Size {
			return out[i].Size > out[j].Size
		}
		return out[i].Witness < out[j].Witness
	})
	if len(out) > limit {
		out = out[:limit]
	}
	return out, nil
}

func (m *memStore) count() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func mustVerifier(t *testing.T, vkey string) *witness.Verifier {
	t.Helper()
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	return v
}

// waitFor polls cond for up to 10 s (behaviour, not timing: the deadline
// only bounds a failing test).
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		if cond() {
			return
		}
	}
	t.Fatalf("timed out waiting for %s", what)
}
