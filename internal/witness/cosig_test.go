package witness_test

import (
	"crypto/ed25519"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"strings"
	"testing"

	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/witness"
)

// A fixed key so the vectors below are stable.
var (
	fixedSeed = []byte("warden-witness-test-seed-32bytes")
	fixedPriv = ed25519.NewKeyFromSeed(fixedSeed)
	fixedPub  = fixedPriv.Public().(ed25519.PublicKey)
)

func TestVerifierKeyGolden(t *testing.T) {
	vkey, err := witness.VerifierKey("witness.example/w1", fixedPub)
	if err != nil {
		t.Fatal(err)
	}
	// The key hash was checked independently:
	// sha256("witness.example/w1\n" + 0x04 + key)[:4] = 1f8858e6.
	const want = "witness.example/w1+1f8858e6+BFIfGQPqonA3xYlOmmgh8M3PCdKrP0OCAITnlc4VDAV8"
	if vkey != want {
		t.Fatalf("vkey = %q, want %q", vkey, want)
	}
	raw, _ := base64.StdEncoding.DecodeString(strings.Split(vkey, "+")[2])
	if raw[0] != 0x04 || len(raw) != 33 {
		t.Fatalf("key bytes: type 0x%02x, %d bytes; want 0x04, 33", raw[0], len(raw))
	}
	v, err := witness.NewVerifier(vkey)
	if err != nil {
		t.Fatal(err)
	}
	if v.Name() != "witness.example/w1" || v.String() != vkey {
		t.Fatalf("parsed %q %q", v.Name(), v.String())
	}
}

// TestNewVerifierRefusesManglings: every one-byte change of a key is
// refused or yields another key (never the same name and hash with a
// different public key).
func TestNewVerifierRefusesManglings(t *testing.T) {
	vkey, _ := witness.VerifierKey("w1", fixedPub)
	good, _ := witness.NewVerifier(vkey)
	for i := 0; i < len(vkey); i++ {
		for _, c := range []byte{'+', 'A', '0', ' ', 0xff} {
			if vkey[i] == c {
				continue
			}
			m := []byte(vkey)
			m[i] = c
			v, err := witness.NewVerifier(string(m))
			if err == nil && v.Name() == good.Name() && v.KeyHash() == good.KeyHash() {
				t.Fatalf("mangled key %q accepted as the same key", m)
			}
			if err != nil && !errors.Is(err, witness.ErrKey) {
				t.Fatalf("error does not wrap ErrKey: %v", err)
			}
		}
	}
}

func TestNewVerifierRefusesOtherKeyTypes(t *testing.T) {
	_, plain, _ := note.GenerateKey(nil, "w1")
	raw := base64.StdEncoding.EncodeToString(append([]byte{0x06}, make([]byte, 1312)...))
	for _, tc := range []struct{ key, want string }{
		{plain, "plain Ed25519 note key (type 0x01)"},
		{"w1+01234567+" + raw, "ML-DSA-44"},
		{"w1+01234567+" + base64.StdEncoding.EncodeToString([]byte{0x09, 1, 2}), "unknown key type 0x09"},
		{"w1+zz+AA!A", "not base64"},
		{"w 1+01234567+BAAA", "invalid key name"},
		{"", "want <name>+<hash>+<key>"},
	} {
		_, err := witness.NewVerifier(tc.key)
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("NewVerifier(%.30q) = %v, want %q", tc.key, err, tc.want)
		}
	}
}

// cosign makes a cosignature/v1 the way the spec says, independently of
// the code under test's message builder.
func cosign(priv ed25519.PrivateKey, ts uint64, text string) []byte {
	msg := "cosignature/v1\ntime " + itoa(ts) + "\n" + text
	return append(binary.BigEndian.AppendUint64(nil, ts), ed25519.Sign(priv, []byte(msg))...)
}

func itoa(n uint64) string {
	if n == 0 {
		return "0"
	}
	var b []byte
	for ; n > 0; n /= 10 {
		b = append([]byte{byte('0' + n%10)}, b...)
	}
	return string(b)
}

func TestVerify(t *testing.T) {
	vkey, _ := witness.VerifierKey("w1", fixedPub)
	v, _ := witness.NewVerifier(vkey)
	text := "warden-audit\n5\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n"
	sig := cosign(fixedPriv, 1700000000, text)
	if !v.Verify([]byte(text), sig) {
		t.Fatal("a valid cosignature does not verify")
	}
	for name, mut := range map[string]func() ([]byte, []byte){
		"text changed":      func() ([]byte, []byte) { return []byte(strings.Replace(text, "5", "6", 1)), sig },
		"timestamp changed": func() ([]byte, []byte) { s := append([]byte{}, sig...); s[7]++; return []byte(text), s },
		"signature changed": func() ([]byte, []byte) { s := append([]byte{}, sig...); s[20] ^= 1; return []byte(text), s },
		"truncated":         func() ([]byte, []byte) { return []byte(text), sig[:len(sig)-1] },
		"no timestamp":      func() ([]byte, []byte) { return []byte(text), sig[8:] },
		"plain note signature": func() ([]byte, []byte) {
			return []byte(text), append(make([]byte, 8), ed25519.Sign(fixedPriv, []byte(text))...)
		},
	} {
		m, s := mut()
		if v.Verify(m, s) {
			t.Errorf("%s: verified", name)
		}
	}
}

// TestOpenCosigned: a note with the log's signature and cosignatures
// opens; cosignatures by unknown keys are ignored; a bad cosignature by a
// known witness or a missing log signature is refused.
func TestOpenCosigned(t *testing.T) {
	l := newTestLog(t, "warden-audit")
	cp := l.add(t, 3)
	vkey, _ := witness.VerifierKey("w1", fixedPub)
	v, _ := witness.NewVerifier(vkey)
	text := string(cp.Note[:strings.Index(string(cp.Note), "\n\n")+1])
	line := func(name string, hash uint32, sig []byte) string {
		return "— " + name + " " + base64.StdEncoding.EncodeToString(append(binary.BigEndian.AppendUint32(nil, hash), sig...)) + "\n"
	}
	good := line("w1", v.KeyHash(), cosign(fixedPriv, 1700000000, text))
	other := line("w9", 0x01020304, cosign(fixedPriv, 1700000000, text))

	c, err := witness.OpenCosigned([]byte(string(cp.Note)+good+other), l.ver, []*witness.Verifier{v})
	if err != nil {
		t.Fatal(err)
	}
	if c.Size != 3 || c.Hash != cp.Hash || len(c.Sigs) != 1 || c.Sigs[0].Witness != "w1" || c.Sigs[0].Time.Unix() != 1700000000 {
		t.Fatalf("opened %+v", c)
	}
	if got := string(c.Bytes()); got != string(cp.Note)+good {
		t.Fatalf("Bytes() = %q", got)
	}
	// Round trip: Bytes opens to the same.
	if c2, err := witness.OpenCosigned(c.Bytes(), l.ver, []*witness.Verifier{v}); err != nil || len(c2.Sigs) != 1 {
		t.Fatalf("round trip: %v %+v", err, c2)
	}

	bad := line("w1", v.KeyHash(), cosign(fixedPriv, 1700000001, "other text\n"))
	if _, err := witness.OpenCosigned([]byte(string(cp.Note)+bad), l.ver, []*witness.Verifier{v}); err == nil {
		t.Fatal("a bad cosignature by a known witness was accepted")
	}
	unsigned := text + "\n" + good
	if _, err := witness.OpenCosigned([]byte(unsigned), l.ver, []*witness.Verifier{v}); err == nil || !strings.Contains(err.Error(), "not signed by the log key") {
		t.Fatalf("a checkpoint without the log's signature: %v", err)
	}
	if _, err := witness.OpenCosigned(make([]byte, 70<<10), l.ver, nil); err == nil {
		t.Fatal("a huge note was accepted")
	}
	// Every prefix of a valid cosigned note is refused without a panic.
	full := []byte(string(cp.Note) + good)
	for i := 0; i < len(full); i++ {
		if c, err := witness.OpenCosigned(full[:i], l.ver, []*witness.Verifier{v}); err == nil && len(c.Sigs) > 0 {
			t.Fatalf("prefix %d accepted with a cosignature", i)
		}
	}
}

func FuzzOpenCosigned(f *testing.F) {
	f.Add([]byte("warden-audit\n1\nAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA=\n\n— warden-audit AAAA\n"))
	vkey, _ := witness.VerifierKey("w1", fixedPub)
	v, _ := witness.NewVerifier(vkey)
	_, lvkey, _ := note.GenerateKey(nil, "warden-audit")
	lv, _ := note.NewVerifier(lvkey)
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := witness.OpenCosigned(b, lv, []*witness.Verifier{v})
		if err == nil && c.Origin != "warden-audit" {
			t.Fatalf("accepted origin %q", c.Origin)
		}
	})
}
