package recording_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"net/http"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/recording"
)

// TestBodySizesRoundTrip: recordings built in memory (encodeSmall) and
// streamed (bodies over 1 MiB) read back byte for byte and verify against
// their digest, for empty, one-byte, incompressible (random) and
// compressible bodies on either side of the 1 MiB boundary; and a flipped
// byte in each stored object is still caught.
func TestBodySizesRoundTrip(t *testing.T) {
	random := func(n int) []byte { b := make([]byte, n); rand.Read(b); return b }
	cases := []struct {
		name string
		body []byte
	}{
		{"empty", nil},
		{"one byte", []byte("x")},
		{"incompressible 64 KiB", random(64 << 10)},
		{"compressible 200 KiB", []byte(strings.Repeat("data: token\n\n", 200<<10/13))},
		{"incompressible just under 1 MiB", random(1<<20 - 4096)},
		{"incompressible over 1 MiB", random(1<<20 + 1)},
		{"compressible 3 MiB", []byte(strings.Repeat("Hello there, this is an answer. ", 3<<20/32))},
	}
	e := newEnv(t, nil, func(o *recording.Options) { o.MaxSize = 16 << 20 })
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c, err := e.rec.Reserve(recording.Info{RequestID: "req-size", Level: recording.LevelFull, RawRequest: true})
			if err != nil {
				t.Fatal(err)
			}
			c.Request(recording.ForwardedRequest{Method: "POST", Path: "/v1/x", Header: http.Header{}, Body: []byte(`{"q":1}`)})
			c.WriteHeader(200, http.Header{"Content-Type": {"application/octet-stream"}})
			for p := tc.body; len(p) > 0; {
				n := min(len(p), 32<<10)
				c.Write(p[:n])
				p = p[n:]
			}
			res := c.Finish(context.Background())
			if res.Outcome != recording.OutcomeStored {
				t.Fatalf("Finish: %+v", res)
			}
			rec, entry, err := e.rec.Load(testCtx(t), res.ID, 16<<20)
			if err != nil {
				t.Fatal(err)
			}
			if !bytes.Equal(rec.ResponseBody, tc.body) || string(rec.RequestBody) != `{"q":1}` {
				t.Fatalf("read back %d response bytes (want %d), request %q", len(rec.ResponseBody), len(tc.body), rec.RequestBody)
			}
			if _, err := e.rec.Verify(testCtx(t), res.ID, res.Digest); err != nil {
				t.Fatalf("Verify: %v", err)
			}
			var canon bytes.Buffer
			if d, err := rec.Encode(&canon); err != nil || d != res.Digest {
				t.Fatalf("digest of the canonical form read back %v (%v), Finish said %v", d, err, res.Digest)
			}
			flipByte(t, e, entry, func(n int) int { return n * 2 / 3 })
			if _, err := e.rec.Verify(testCtx(t), res.ID, res.Digest); !recording.IsCorrupt(err) {
				t.Errorf("Verify after a byte flip: %v, want CorruptError", err)
			}
		})
	}
}
