package recording

import (
	"bytes"
	"crypto/sha256"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/wardenhq/warden/bench/upstream"
)

// benchPairs are the canonical forms of the bench harness's own calls
// (bench/upstream's answers to the request bench/runner sends, JSON and
// SSE, unmasked: masking replaces four values and changes the sizes by a
// few bytes), as the recorder builds them.
func benchPairs(t testing.TB) map[string][]byte {
	t.Helper()
	up := upstream.New(upstream.Options{})
	out := map[string][]byte{}
	for _, stream := range []bool{false, true} {
		s := "false"
		if stream {
			s = "true"
		}
		reqBody := []byte(`{"model":"` + upstream.ModelPII + `","stream":` + s +
			`,"messages":[{"role":"user","content":"Summarise the customer record in two sentences."}]}`)
		w := httptest.NewRecorder()
		up.ServeHTTP(w, httptest.NewRequest(http.MethodPost, "/v1/chat/completions", bytes.NewReader(reqBody)))
		resp := w.Body.Bytes()
		m := &Meta{
			V: FormatVersion, ID: "0019acd1e2f3a4b5c6d7e8f9a0b1c2d3e4f", RequestID: "req_01JDXY7Z8QWERTYUIOPASDFGHJ",
			Principal: "alice@example.com", Route: "openai", Level: LevelFull,
			StartedAt: time.Date(2026, 12, 1, 5, 14, 0, 123456789, time.UTC), DurationNS: 4_812_345,
			Request: RequestMeta{
				Method: "POST", Scheme: "http", Host: "127.0.0.1:39999", Path: "/v1/chat/completions",
				Header: filterHeader(http.Header{
					"Content-Type": {"application/json"}, "Accept-Encoding": {"gzip"}, "User-Agent": {"Go-http-client/1.1"},
					"X-Request-Id": {"req_01JDXY7Z8QWERTYUIOPASDFGHJ"}, "X-Warden-Assertion": {strings.Repeat("eyJhbGciOiJFZERTQSJ9", 12)},
				}, nil),
				BodySize: int64(len(reqBody)), Body: BodyRedacted,
			},
			Response: ResponseMeta{
				Status: 200, Header: filterHeader(w.Header(), nil), HeaderAtNS: 2_345_678,
				BodySize: int64(len(resp)), Body: BodyFull, SSE: stream,
			},
		}
		var timing []byte
		at := int64(2_400_000)
		if stream {
			for i, ev := range bytes.SplitAfter(resp, []byte("\n\n")) {
				if len(ev) == 0 {
					continue
				}
				end := bytes.Index(resp, ev) + len(ev)
				timing = AppendMark(timing, Mark{End: int64(end), AtNS: at + int64(i)*10_123_457})
				m.Response.Events++
				m.Response.Marks++
			}
		} else {
			timing = AppendMark(timing, Mark{End: int64(len(resp)), AtNS: at})
			m.Response.Marks = 1
		}
		meta, err := MarshalMeta(m)
		if err != nil {
			t.Fatal(err)
		}
		plain, err := appendCanonical(nil, meta, BytesBody(reqBody), BytesBody(timing), BytesBody(resp))
		if err != nil {
			t.Fatal(err)
		}
		name := "json"
		if stream {
			name = "sse"
		}
		out[name] = plain
	}
	return out
}

// BenchmarkZstdOptions compares encoder settings for encodeSmall on the
// bench's real calls: CPU per EncodeAll and compressed bytes (decision 032).
//
//	go test -run '^$' -bench ZstdOptions ./internal/recording/
func BenchmarkZstdOptions(b *testing.B) {
	base := []zstd.EOption{zstd.WithWindowSize(512 << 10), zstd.WithLowerEncoderMem(true), zstd.WithEncoderCRC(false), zstd.WithEncoderConcurrency(1)}
	variants := []struct {
		name string
		opts []zstd.EOption
	}{
		{"fastest", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest)}},
		{"fastest-noentropy", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithNoEntropyCompression(true)}},
		{"fastest-win64k", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(64 << 10)}},
		{"fastest-nolitall", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithAllLitEntropyCompression(false)}},
		{"default", []zstd.EOption{zstd.WithEncoderLevel(zstd.SpeedDefault)}},
	}
	for name, plain := range benchPairs(b) {
		for _, v := range variants {
			b.Run(fmt.Sprintf("%s/%s", name, v.name), func(b *testing.B) {
				enc, err := zstd.NewWriter(nil, append(base, v.opts...)...)
				if err != nil {
					b.Fatal(err)
				}
				var dst []byte
				cpu0 := cpuNow()
				for b.Loop() {
					dst = enc.EncodeAll(plain, dst[:0])
				}
				b.ReportMetric(float64((cpuNow()-cpu0).Nanoseconds())/float64(b.N), "cpu-ns/op")
				b.ReportMetric(float64(len(plain)), "plain-B")
				b.ReportMetric(float64(len(dst)), "zstd-B")
			})
		}
	}
}

// cpuNow is the process's user+system CPU time.
func cpuNow() time.Duration {
	var ru syscall.Rusage
	syscall.Getrusage(syscall.RUSAGE_SELF, &ru)
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestObjectsOfEveryEncoderSettingOpen: objects stored before decision 032
// (entropy stage on; before 028 also with the frame checksum) and after
// it (no entropy stage for small objects) decompress with the reader of
// every stored object to the same canonical form and digest; a flipped
// byte is still caught by the seal.
func TestObjectsOfEveryEncoderSettingOpen(t *testing.T) {
	settings := map[string][]zstd.EOption{
		"main-before-028": {zstd.WithEncoderLevel(zstd.SpeedFastest), zstd.WithWindowSize(512 << 10), zstd.WithLowerEncoderMem(true)},
		"main-028":        zstdOptions,
		"small-032":       append(slices.Clone(zstdOptions), zstd.WithNoEntropyCompression(true)),
	}
	for name, plain := range benchPairs(t) {
		want := Digest(sha256.Sum256(plain))
		for sname, opts := range settings {
			enc, err := zstd.NewWriter(nil, append(opts, zstd.WithEncoderConcurrency(1))...)
			if err != nil {
				t.Fatal(err)
			}
			comp := enc.EncodeAll(plain, nil)
			dk := bytes.Repeat([]byte{7}, KeySize)
			var obj bytes.Buffer
			sw, err := newSealWriter(&obj, dk, testID)
			if err != nil {
				t.Fatal(err)
			}
			sw.Write(comp)
			if err := sw.Close(); err != nil {
				t.Fatal(err)
			}
			sw.release()
			read := func(b []byte) (*Recording, Digest, error) {
				or, err := newOpenReader(bytes.NewReader(b), dk, testID)
				if err != nil {
					return nil, Digest{}, err
				}
				dec, err := newDecoder(or)
				if err != nil {
					return nil, Digest{}, err
				}
				defer dec.Close()
				return ReadAll(dec, 1<<20)
			}
			rec, d, err := read(obj.Bytes())
			if err != nil {
				t.Fatalf("%s/%s: %v", name, sname, err)
			}
			if d != want || rec.Meta.Response.BodySize == 0 {
				t.Errorf("%s/%s: digest %s, want %s", name, sname, d, want)
			}
			bad := bytes.Clone(obj.Bytes())
			bad[len(bad)/2] ^= 1
			if _, _, err := read(bad); err == nil {
				t.Errorf("%s/%s: a flipped byte was not caught", name, sname)
			}
		}
	}
}
