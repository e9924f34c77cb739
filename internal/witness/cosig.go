package witness

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"
	"unicode"
	"unicode/utf8"
)

// Key types of C2SP signed-note verifier keys (vkeys) that concern
// witnesses (https://c2sp.org/signed-note, https://c2sp.org/tlog-cosignature).
const (
	algEd25519      = 0x01 // plain Ed25519 note signature
	algCosigV1      = 0x04 // Ed25519 cosignature/v1 (timestamped)
	algMLDSA44Cosig = 0x06 // ML-DSA-44 cosignature (not supported here)
)

// cosigSize is a cosignature/v1 signature: 8-byte timestamp ‖ 64-byte
// Ed25519 signature.
const cosigSize = 8 + ed25519.SignatureSize

// Verifier verifies Ed25519 cosignature/v1 signatures of one witness key
// (C2SP tlog-cosignature). It implements note.Verifier, so a cosigned
// checkpoint can be opened with note.Open and a VerifierList holding the
// log's key and the witnesses' verifiers.
type Verifier struct {
	name string
	hash uint32
	pub  ed25519.PublicKey
	vkey string
}

// ErrKey: a witness verifier key is malformed or of an unsupported type.
var ErrKey = errors.New("witness: bad verifier key")

// NewVerifier parses a cosignature/v1 verifier key,
// "<name>+<hash hex>+<base64(0x04 ‖ Ed25519 public key)>", as printed by
// the transparency-dev witness's generate_keys tool. The key hash must be
// the one the spec derives from name and key. Errors wrap ErrKey.
func NewVerifier(vkey string) (*Verifier, error) {
	vkey = strings.TrimSpace(vkey)
	fail := func(format string, args ...any) (*Verifier, error) {
		return nil, fmt.Errorf("%w: %s", ErrKey, fmt.Sprintf(format, args...))
	}
	name, rest, ok1 := strings.Cut(vkey, "+")
	hash16, key64, ok2 := strings.Cut(rest, "+")
	if !ok1 || !ok2 {
		return fail("want <name>+<hash>+<key>")
	}
	if !validName(name) {
		return fail("invalid key name %q", name)
	}
	key, err := base64.StdEncoding.DecodeString(key64)
	if err != nil || len(key) == 0 {
		return fail("key is not base64")
	}
	switch key[0] {
	case algCosigV1:
	case algEd25519:
		return fail("%s is a plain Ed25519 note key (type 0x01); a witness is configured with its cosignature/v1 key (type 0x04), the one the witness's generate_keys prints", name)
	case algMLDSA44Cosig:
		return fail("%s is an ML-DSA-44 cosignature key (type 0x06); only Ed25519 cosignature/v1 keys (type 0x04) are supported", name)
	default:
		return fail("%s has unknown key type 0x%02x; want an Ed25519 cosignature/v1 key (type 0x04)", name, key[0])
	}
	if len(key) != 1+ed25519.PublicKeySize {
		return fail("%s: Ed25519 key has %d bytes, want %d", name, len(key)-1, ed25519.PublicKeySize)
	}
	h, err := strconv.ParseUint(hash16, 16, 32)
	if err != nil || len(hash16) != 8 {
		return fail("%s: key hash %q is not 8 hex digits", name, hash16)
	}
	pub := ed25519.PublicKey(key[1:])
	if want := keyHash(name, pub); uint32(h) != want {
		return fail("%s: key hash %s does not match the key (want %08x)", name, hash16, want)
	}
	return &Verifier{name: name, hash: uint32(h), pub: pub, vkey: vkey}, nil
}

// VerifierKey returns the cosignature/v1 verifier key text for an Ed25519
// public key.
func VerifierKey(name string, pub ed25519.PublicKey) (string, error) {
	if !validName(name) || len(pub) != ed25519.PublicKeySize {
		return "", fmt.Errorf("%w: invalid name or key", ErrKey)
	}
	return fmt.Sprintf("%s+%08x+%s", name, keyHash(name, pub),
		base64.StdEncoding.EncodeToString(append([]byte{algCosigV1}, pub...))), nil
}

// keyHash is the key ID: SHA-256(name ‖ "\n" ‖ 0x04 ‖ key)[:4].
func keyHash(name string, pub ed25519.PublicKey) uint32 {
	h := sha256.New()
	h.Write([]byte(name + "\n"))
	h.Write([]byte{algCosigV1})
	h.Write(pub)
	return binary.BigEndian.Uint32(h.Sum(nil))
}

// validName is the signed-note key name rule: non-empty, valid UTF-8, no
// Unicode spaces and no plus signs.
func validName(name string) bool {
	return name != "" && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsSpace) < 0 && !strings.Contains(name, "+")
}

// Name is the witness key's name (note.Verifier).
func (v *Verifier) Name() string { return v.name }

// KeyHash is the key ID (note.Verifier).
func (v *Verifier) KeyHash() uint32 { return v.hash }

// String returns the verifier key text.
func (v *Verifier) String() string { return v.vkey }

// Verify reports whether sig is a valid cosignature/v1 of the note text
// msg (note.Verifier). sig is timestamp ‖ Ed25519 signature.
func (v *Verifier) Verify(msg, sig []byte) bool {
	if len(sig) != cosigSize {
		return false
	}
	ts := binary.BigEndian.Uint64(sig[:8])
	if ts > 1<<63-1 {
		return false
	}
	return ed25519.Verify(v.pub, CosignedMessage(ts, msg), sig[8:])
}

// CosignedMessage is what a cosignature/v1 signs: the header line, the
// timestamp line and the checkpoint's note text (with its final newline,
// without signatures).
func CosignedMessage(timestamp uint64, text []byte) []byte {
	m := make([]byte, 0, 40+len(text))
	m = append(m, "cosignature/v1\ntime "...)
	m = strconv.AppendUint(m, timestamp, 10)
	m = append(m, '\n')
	return append(m, text...)
}

// signatureTime returns the timestamp of a cosignature/v1 signature in a
// note signature's base64 (key ID ‖ timestamp ‖ signature).
func signatureTime(b64 string) (time.Time, bool) {
	raw, err := base64.StdEncoding.DecodeString(b64)
	if err != nil || len(raw) != 4+cosigSize {
		return time.Time{}, false
	}
	ts := binary.BigEndian.Uint64(raw[4:12])
	if ts > 1<<63-1 {
		return time.Time{}, false
	}
	return time.Unix(int64(ts), 0).UTC(), true
}
