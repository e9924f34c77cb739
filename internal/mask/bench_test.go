package mask

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/hoophq/alcatraz"
)

// benchText builds ~64 KiB of prose with one PII value every `every` bytes.
func benchText(every int) string {
	filler := "The quarterly report shows revenue grew by 12 percent in 2024, driven by strong demand from enterprise customers. "
	pii := []string{"4111 1111 1111 1111", "jane.doe@example.com", "(415) 555-2671", "DE89 3704 0044 0532 0130 00", "123-45-6789"}
	var b strings.Builder
	next := every
	for i := 0; b.Len() < 64<<10; i++ {
		if b.Len() >= next {
			b.WriteString("Contact " + pii[i%len(pii)] + " now. ")
			next += every
			continue
		}
		b.WriteString(filler[:min(len(filler), every)])
	}
	return b.String()
}

func benchJSON(text string) []byte {
	return []byte(`{"id":"chatcmpl-1","object":"chat.completion","model":"m","choices":[{"index":0,"message":{"role":"assistant","content":` + jstr(text) + `},"finish_reason":"stop"}],"usage":{"total_tokens":100}}`)
}

// benchSSE splits text into ~24-byte deltas, as a model streams tokens.
func benchSSE(text string) []byte {
	var b strings.Builder
	for i := 0; i < len(text); {
		j := min(i+24, len(text))
		b.WriteString(`data: {"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":{"content":` + jstr(text[i:j]) + `},"finish_reason":null}]}` + "\n\n")
		i = j
	}
	b.WriteString("data: [DONE]\n\n")
	return []byte(b.String())
}

// BenchmarkMask compares Warden's masker with alcatraz alone on the same
// bytes (alcatraz restricted to the default profile's entities, run once
// over the whole input: its best case, and not streaming-safe).
func BenchmarkMask(b *testing.B) {
	m := defaultMasker(b)
	eng := alcatraz.NewEngine()
	opts := alcatraz.Options{Entities: DefaultEntities}
	for _, density := range []struct {
		name  string
		every int
	}{{"sparse", 4096}, {"dense", 120}} {
		text := benchText(density.every)
		inputs := map[string][]byte{"text": []byte(text), "json": benchJSON(text), "sse": benchSSE(text)}
		for _, kind := range []string{"text", "json", "sse"} {
			in := inputs[kind]
			b.Run(fmt.Sprintf("warden/%s/%s", density.name, kind), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				for b.Loop() {
					switch kind {
					case "text":
						m.MaskText(text, "body", nil)
					case "json":
						if _, err := m.MaskJSON(in, nil); err != nil {
							b.Fatal(err)
						}
					case "sse":
						r := &maskReader{src: strings.NewReader(string(in)), closer: io.NopCloser(nil), proc: &sseProc{s: newSSEMasker(m, nil, StreamOpenAI)}, buf: make([]byte, 32<<10)}
						if _, err := io.Copy(io.Discard, r); err != nil {
							b.Fatal(err)
						}
					}
				}
			})
			b.Run(fmt.Sprintf("alcatraz/%s/%s", density.name, kind), func(b *testing.B) {
				b.ReportAllocs()
				b.SetBytes(int64(len(in)))
				s := string(in)
				for b.Loop() {
					eng.Analyze(s, opts)
				}
			})
		}
	}
}

// BenchmarkWrapResponseJSON measures a non-streamed chat answer through
// WrapResponse, the gateway's hot path for JSON: read, mask, send. The body
// buffer is pooled; b.ReportAllocs shows what a response still costs.
func BenchmarkWrapResponseJSON(b *testing.B) {
	m := defaultMasker(b)
	for _, size := range []struct {
		name  string
		every int
	}{{"1KiB-clean", 1 << 20}, {"1KiB-pii", 300}, {"64KiB-sparse", 4096}} {
		text := benchText(size.every)
		if size.name != "64KiB-sparse" {
			text = text[:1<<10]
		}
		body := benchJSON(text)
		b.Run(size.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(body)))
			for b.Loop() {
				resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"application/json"}},
					Body: io.NopCloser(bytes.NewReader(body)), ContentLength: int64(len(body))}
				if err := m.WrapResponse(resp, nil, StreamOpenAI); err != nil {
					b.Fatal(err)
				}
				if _, err := io.Copy(io.Discard, resp.Body); err != nil {
					b.Fatal(err)
				}
				resp.Body.Close()
			}
		})
	}
}
