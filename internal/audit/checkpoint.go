package audit

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// A checkpoint is a C2SP tlog-checkpoint (https://c2sp.org/tlog-checkpoint)
// in a signed note:
//
//	<origin>
//	<tree size, decimal>
//	<tree hash, base64>
//	time <RFC 3339 UTC with nanoseconds>
//
//	— <origin> <signature>
//
// The origin is the signing key's name. The "time" extension line makes
// the signing time part of the signed text (ISO 27001 A.8.17).

// maxCheckpointText bounds a checkpoint body: a strict parser refuses
// anything larger.
const maxCheckpointText = 1024

// FormatCheckpoint returns the checkpoint body (unsigned note text).
func FormatCheckpoint(origin string, size int64, hash tlog.Hash, at time.Time) []byte {
	return []byte(fmt.Sprintf("%s\n%d\n%s\ntime %s\n", origin, size,
		base64.StdEncoding.EncodeToString(hash[:]), at.UTC().Format(time.RFC3339Nano)))
}

// ParseCheckpoint parses a checkpoint body. It is strict: the text must be
// exactly what FormatCheckpoint produces.
func ParseCheckpoint(text []byte) (origin string, size int64, hash tlog.Hash, at time.Time, err error) {
	fail := func(msg string) (string, int64, tlog.Hash, time.Time, error) {
		return "", 0, tlog.Hash{}, time.Time{}, fmt.Errorf("audit: malformed checkpoint: %s", msg)
	}
	if len(text) > maxCheckpointText {
		return fail("too long")
	}
	lines := strings.Split(string(text), "\n")
	if len(lines) != 5 || lines[4] != "" {
		return fail("want 4 lines")
	}
	origin = lines[0]
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 {
		return fail("bad size")
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return fail("bad hash")
	}
	ts, ok := strings.CutPrefix(lines[3], "time ")
	if !ok {
		return fail("missing time")
	}
	at, err = time.Parse(time.RFC3339Nano, ts)
	if err != nil {
		return fail("bad time")
	}
	hash = tlog.Hash(h)
	if !bytes.Equal(FormatCheckpoint(origin, size, hash, at), text) {
		return fail("not in canonical form")
	}
	return origin, size, hash, at.UTC(), nil
}

// SignCheckpoint signs a checkpoint of the tree (size, hash) at time at.
func SignCheckpoint(s note.Signer, size int64, hash tlog.Hash, at time.Time) (Checkpoint, error) {
	at = at.UTC()
	msg, err := note.Sign(&note.Note{Text: string(FormatCheckpoint(s.Name(), size, hash, at))}, s)
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: sign checkpoint %d: %w", size, err)
	}
	return Checkpoint{Size: size, Hash: hash, Time: at, Note: msg}, nil
}

// ErrBadSignature: a checkpoint is not validly signed by the verifier key.
var ErrBadSignature = errors.New("checkpoint signature invalid")

// OpenCheckpoint verifies a signed checkpoint note against v and parses
// it. The origin must be v's name. Errors wrap ErrBadSignature when the
// signature does not verify.
func OpenCheckpoint(msg []byte, v note.Verifier) (Checkpoint, error) {
	n, err := note.Open(msg, note.VerifierList(v))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("audit: %w: %v", ErrBadSignature, err)
	}
	origin, size, hash, at, err := ParseCheckpoint([]byte(n.Text))
	if err != nil {
		return Checkpoint{}, err
	}
	if origin != v.Name() {
		return Checkpoint{}, fmt.Errorf("audit: checkpoint origin %q is not the key name %q", origin, v.Name())
	}
	return Checkpoint{Size: size, Hash: hash, Time: at, Note: msg}, nil
}
