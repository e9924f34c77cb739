// Package witnesstest provides what tests of witnessing need: an
// in-process C2SP tlog-witness served over real HTTP (Witness), and the
// contract suite every witness.Store must pass (RunStore).
//
// Witness follows the protocol as the spec words it (status codes, 409
// body, consistency and same-size checks, Ed25519 cosignature/v1) so that
// tests of refusals run everywhere; the interoperability test against the
// transparency-dev omniwitness proves the same behaviour on the real
// thing. Never use it outside tests: it keeps its state in memory.
package witnesstest

import (
	"bufio"
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/witness"
)

// Witness is an in-process tlog-witness for tests.
type Witness struct {
	// URL is the submission prefix; Name and Key the cosignature/v1 key
	// name and verifier key.
	URL, Name, Key string

	srv  *httptest.Server
	priv ed25519.PrivateKey
	hash uint32

	mu      sync.Mutex
	logs    map[string]note.Verifier // origin → log key
	latest  map[string][]byte        // origin → cosigned checkpoint
	fail    int                      // forced status (0: none)
	answer  func() []byte            // forced 200 body (nil: none)
	Calls   int                      // add-checkpoint requests served
	lastReq []byte
}

// New starts a witness named name (on 127.0.0.1) that trusts the given log
// verifier keys (note vkeys; the origin is the key name). It stops at the
// end of the test.
func New(t testing.TB, name string, logVKeys ...string) *Witness {
	t.Helper()
	pub, priv, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	vkey, err := witness.VerifierKey(name, pub)
	if err != nil {
		t.Fatal(err)
	}
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	w := &Witness{Name: name, Key: vkey, priv: priv, hash: v.KeyHash(),
		logs: map[string]note.Verifier{}, latest: map[string][]byte{}}
	for _, k := range logVKeys {
		lv, err := note.NewVerifier(k)
		if err != nil {
			t.Fatal(err)
		}
		w.logs[lv.Name()] = lv
	}
	mux := http.NewServeMux()
	mux.HandleFunc("POST /add-checkpoint", w.addCheckpoint)
	w.srv = httptest.NewServer(mux)
	w.URL = w.srv.URL
	t.Cleanup(w.srv.Close)
	return w
}

// Close stops the server (further calls fail to connect).
func (w *Witness) Close() { w.srv.Close() }

// Fail makes every call answer status (0 restores normal service).
func (w *Witness) Fail(status int) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.fail = status
}

// Answer makes every call answer 200 with body() (nil restores normal
// service): for testing how clients treat a lying witness.
func (w *Witness) Answer(body func() []byte) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.answer = body
}

// Latest returns the cosigned checkpoint the witness holds for origin
// (nil if none): what a witness operator hands an auditor.
func (w *Witness) Latest(origin string) []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.latest[origin]...)
}

// Size returns the size of the witness's latest checkpoint for origin
// (-1 if none).
func (w *Witness) Size(origin string) int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.latest[origin] == nil {
		return -1
	}
	lines := strings.SplitN(string(w.latest[origin]), "\n", 3)
	n, _ := strconv.ParseInt(lines[1], 10, 64)
	return n
}

// LastRequest returns the body of the last add-checkpoint request.
func (w *Witness) LastRequest() []byte {
	w.mu.Lock()
	defer w.mu.Unlock()
	return append([]byte(nil), w.lastReq...)
}

func (w *Witness) addCheckpoint(rw http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(http.MaxBytesReader(rw, r.Body, 16<<10))
	w.mu.Lock()
	defer w.mu.Unlock()
	w.Calls++
	w.lastReq = body
	if w.fail != 0 {
		rw.WriteHeader(w.fail)
		return
	}
	if w.answer != nil {
		rw.Write(w.answer())
		return
	}
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	old, proof, cpNote, err := parseRequest(body)
	if err != nil {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	origin, _, _ := strings.Cut(string(cpNote), "\n")
	lv, ok := w.logs[origin]
	if !ok {
		rw.WriteHeader(http.StatusNotFound)
		return
	}
	cp, err := witness.ParseCheckpoint(cpNote, lv)
	if err != nil {
		rw.WriteHeader(http.StatusForbidden)
		return
	}
	if old > cp.Size {
		rw.WriteHeader(http.StatusBadRequest)
		return
	}
	if cp.Size == 0 && cp.Hash != tlog.Hash(sha256.Sum256(nil)) {
		rw.WriteHeader(http.StatusUnprocessableEntity)
		return
	}
	var prev witness.Checkpoint
	if b := w.latest[origin]; b != nil {
		if prev, err = witness.ParseCheckpoint(b, lv); err != nil {
			rw.WriteHeader(http.StatusInternalServerError)
			return
		}
	}
	if old != prev.Size {
		rw.Header().Set("Content-Type", "text/x.tlog.size")
		rw.WriteHeader(http.StatusConflict)
		fmt.Fprintf(rw, "%d\n", prev.Size)
		return
	}
	switch {
	case old == 0:
		if len(proof) != 0 {
			rw.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
	case old == cp.Size:
		if cp.Hash != prev.Hash || len(proof) != 0 {
			rw.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
	default:
		if tlog.CheckTree(proof, cp.Size, cp.Hash, prev.Size, prev.Hash) != nil {
			rw.WriteHeader(http.StatusUnprocessableEntity)
			return
		}
	}
	line := w.cosign(cpNote)
	w.latest[origin] = append(append([]byte(nil), cpNote...), line...)
	io.WriteString(rw, line)
}

// cosign returns the witness's cosignature/v1 line on a checkpoint note.
func (w *Witness) cosign(cpNote []byte) string {
	text := cpNote[:bytes.Index(cpNote, []byte("\n\n"))+1]
	ts := uint64(time.Now().Unix())
	sig := ed25519.Sign(w.priv, witness.CosignedMessage(ts, text))
	raw := binary.BigEndian.AppendUint32(nil, w.hash)
	raw = binary.BigEndian.AppendUint64(raw, ts)
	raw = append(raw, sig...)
	return "— " + w.Name + " " + base64.StdEncoding.EncodeToString(raw) + "\n"
}

// parseRequest parses an add-checkpoint body strictly: "old N", proof
// lines, an empty line, the checkpoint.
func parseRequest(body []byte) (int64, tlog.TreeProof, []byte, error) {
	br := bufio.NewReader(bytes.NewReader(body))
	line, err := br.ReadString('\n')
	if err != nil {
		return 0, nil, nil, err
	}
	s, ok := strings.CutPrefix(strings.TrimSuffix(line, "\n"), "old ")
	old, perr := strconv.ParseInt(s, 10, 64)
	if !ok || perr != nil || old < 0 || strconv.FormatInt(old, 10) != s {
		return 0, nil, nil, fmt.Errorf("bad old size line %q", line)
	}
	var proof tlog.TreeProof
	for {
		line, err := br.ReadString('\n')
		if err != nil {
			return 0, nil, nil, err
		}
		if line == "\n" {
			break
		}
		h, err := base64.StdEncoding.DecodeString(strings.TrimSuffix(line, "\n"))
		if err != nil || len(h) != tlog.HashSize || len(proof) == 63 {
			return 0, nil, nil, fmt.Errorf("bad proof line")
		}
		proof = append(proof, tlog.Hash(h))
	}
	rest, _ := io.ReadAll(br)
	return old, proof, rest, nil
}
