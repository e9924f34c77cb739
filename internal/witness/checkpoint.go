package witness

import (
	"bytes"
	"encoding/base64"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

// maxNote bounds a checkpoint note with its signatures; anything larger is
// refused before parsing.
const maxNote = 64 << 10

// Checkpoint is a log checkpoint (C2SP tlog-checkpoint) signed by the
// log's key: origin, tree size and tree hash. Extension lines (Warden's
// "time" line) are part of the signed text and kept in Note.
type Checkpoint struct {
	// Origin is the log's identity (the first line; Warden's key name).
	Origin string
	// Size is the number of entries.
	Size int64
	// Hash is the RFC 6962 tree hash of entries [0, Size).
	Hash tlog.Hash
	// Note is the signed note as the log signed it.
	Note []byte
}

// ParseCheckpoint verifies the log's signature on a checkpoint note and
// parses it. Signatures by other keys (cosignatures) are ignored. The
// origin must be the log key's name.
func ParseCheckpoint(msg []byte, logKey note.Verifier) (Checkpoint, error) {
	if len(msg) > maxNote {
		return Checkpoint{}, errors.New("witness: checkpoint too large")
	}
	n, err := note.Open(msg, note.VerifierList(logKey))
	if err != nil {
		return Checkpoint{}, fmt.Errorf("witness: checkpoint is not signed by the log key %s: %w", logKey.Name(), err)
	}
	return parseBody(n.Text, logKey, msg)
}

// parseBody parses a checkpoint's note text (origin, size, hash, then
// optional extension lines).
func parseBody(text string, logKey note.Verifier, msg []byte) (Checkpoint, error) {
	lines := strings.SplitN(text, "\n", 4)
	if len(lines) < 4 {
		return Checkpoint{}, errors.New("witness: malformed checkpoint: fewer than 3 lines")
	}
	origin := lines[0]
	size, err := strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || strconv.FormatInt(size, 10) != lines[1] {
		return Checkpoint{}, fmt.Errorf("witness: malformed checkpoint: bad size %q", lines[1])
	}
	h, err := base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(h) != tlog.HashSize {
		return Checkpoint{}, fmt.Errorf("witness: malformed checkpoint: bad tree hash %q", lines[2])
	}
	if origin != logKey.Name() {
		return Checkpoint{}, fmt.Errorf("witness: checkpoint origin %q is not the log key name %q", origin, logKey.Name())
	}
	return Checkpoint{Origin: origin, Size: size, Hash: tlog.Hash(h), Note: msg}, nil
}

// Sig is one valid cosignature on a checkpoint.
type Sig struct {
	// Witness is the witness key's name; KeyHash its key ID.
	Witness string
	KeyHash uint32
	// Time is the cosignature's timestamp: the witness states that, at
	// this time, this was the largest consistent tree it had seen.
	Time time.Time
	// Line is the note signature line ("— name base64\n").
	Line string
}

// Cosigned is a checkpoint with the cosignatures that verified against a
// set of witness keys.
type Cosigned struct {
	Checkpoint
	// Sigs are the valid cosignatures, at most one per witness key.
	Sigs []Sig
}

// Witnesses returns the names of the witnesses that cosigned.
func (c Cosigned) Witnesses() []string {
	out := make([]string, len(c.Sigs))
	for i, s := range c.Sigs {
		out[i] = s.Witness
	}
	return out
}

// Bytes returns the checkpoint note with the log's signature and every
// valid cosignature, in the signed-note format: a file another tool (or
// `warden verify --checkpoint`) can check on its own.
func (c Cosigned) Bytes() []byte {
	var b bytes.Buffer
	b.Write(c.Note)
	for _, s := range c.Sigs {
		if !bytes.Contains(c.Note, []byte(s.Line)) {
			b.WriteString(s.Line)
		}
	}
	return b.Bytes()
}

// OpenCosigned verifies a checkpoint note signed by the log and
// cosigned by witnesses. The log's signature is required; cosignatures by
// keys not in ws are ignored; a cosignature by a key in ws that does not
// verify makes the note invalid (signed-note rules). The result's Note
// holds the text and the log's signature only.
func OpenCosigned(msg []byte, logKey note.Verifier, ws []*Verifier) (Cosigned, error) {
	if len(msg) > maxNote {
		return Cosigned{}, errors.New("witness: cosigned checkpoint too large")
	}
	vs := make([]note.Verifier, 0, len(ws)+1)
	vs = append(vs, logKey)
	for _, w := range ws {
		vs = append(vs, w)
	}
	n, err := note.Open(msg, note.VerifierList(vs...))
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: cosigned checkpoint: %w", err)
	}
	var logSig *note.Signature
	var c Cosigned
	for i, s := range n.Sigs {
		if s.Name == logKey.Name() && s.Hash == logKey.KeyHash() {
			logSig = &n.Sigs[i]
			continue
		}
		at, ok := signatureTime(s.Base64)
		if !ok {
			return Cosigned{}, fmt.Errorf("witness: cosignature by %s has no timestamp", s.Name)
		}
		c.Sigs = append(c.Sigs, Sig{Witness: s.Name, KeyHash: s.Hash, Time: at, Line: sigLine(s)})
	}
	if logSig == nil {
		return Cosigned{}, fmt.Errorf("witness: checkpoint is not signed by the log key %s", logKey.Name())
	}
	signed, err := note.Sign(&note.Note{Text: n.Text, Sigs: []note.Signature{*logSig}})
	if err != nil {
		return Cosigned{}, fmt.Errorf("witness: cosigned checkpoint: %w", err)
	}
	cp, err := parseBody(n.Text, logKey, signed)
	if err != nil {
		return Cosigned{}, err
	}
	c.Checkpoint = cp
	return c, nil
}

func sigLine(s note.Signature) string {
	return "— " + s.Name + " " + s.Base64 + "\n"
}

// merge adds b's cosignatures to a (same checkpoint). Two checkpoints of
// one size with different tree hashes, both signed by the log, prove a
// fork: merge returns a *Divergence.
func merge(a, b Cosigned) (Cosigned, error) {
	if a.Note == nil {
		return b, nil
	}
	if a.Size != b.Size || a.Hash != b.Hash {
		return Cosigned{}, &Divergence{Size: a.Size, Msg: fmt.Sprintf(
			"the log signed two different trees of size %d (%s, cosigned by %s, and %s, cosigned by %s): the log was forked",
			a.Size, a.Hash, strings.Join(a.Witnesses(), ", "), b.Hash, strings.Join(b.Witnesses(), ", "))}
	}
	for _, s := range b.Sigs {
		dup := false
		for _, t := range a.Sigs {
			if t.Witness == s.Witness && t.KeyHash == s.KeyHash {
				dup = true
				break
			}
		}
		if !dup {
			a.Sigs = append(a.Sigs, s)
		}
	}
	sort.Slice(a.Sigs, func(i, j int) bool { return a.Sigs[i].Witness < a.Sigs[j].Witness })
	return a, nil
}
