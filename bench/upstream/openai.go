package upstream

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"
)

// ModelPII is the model name that makes the upstream answer with content
// holding personal data (email, phone, card number, IBAN), so masking has
// work to do. Any other model name gets clean content.
const ModelPII = "bench-pii"

// PIIEmail is the email address in ModelPII answers (whole in the JSON
// answer, split over three deltas in streams); it must not survive masking.
const PIIEmail = "jane.doe@example.com"

// StreamEnd is the last content delta of every stream. A client that has
// seen it and then "data: [DONE]" has received the whole stream; masking
// never touches it.
const StreamEnd = " END-OF-STREAM."

// Options configure the fake server.
type Options struct {
	// StreamDeltas is the number of content deltas per SSE stream
	// (default 20 when <= 0).
	StreamDeltas int
	// StreamPace is the pause between two deltas (0: none).
	StreamPace time.Duration
}

// Server is the fake OpenAI-compatible API. It is safe for concurrent use.
type Server struct {
	opts       Options
	chatClean  []byte
	chatPII    []byte
	embeddings []byte
}

const cleanText = "Warden sits in front of every inference call and turns it into evidence. " +
	"This answer is deliberately about one kilobyte long so that the benchmark measures the cost of the proxy and not the cost of the payload. " +
	"It talks about quarterly planning, the weather in the mountains, the price of coffee and other harmless topics that no detector should flag. " +
	"The rest is filler: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " +
	"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. " +
	"Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur, excepteur sint occaecat cupidatat non proident."

const piiText = "Warden sits in front of every inference call and turns it into evidence. " +
	"The customer is Jane Doe, reachable at jane.doe@example.com or on +1 415 555 0134. " +
	"She paid with card 4111 1111 1111 1111 and asked for a refund to IBAN DE89 3704 0044 0532 0130 00. " +
	"The rest is filler: lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et dolore magna aliqua. " +
	"Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip ex ea commodo consequat. " +
	"Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu fugiat nulla pariatur, excepteur sint occaecat cupidatat non proident." +
	" Sunt in culpa qui officia deserunt mollit anim id est laborum, sed ut perspiciatis unde omnis iste natus error."

// New returns a server with opts (defaults filled in).
func New(opts Options) *Server {
	if opts.StreamDeltas <= 0 {
		opts.StreamDeltas = 20
	}
	return &Server{
		opts:       opts,
		chatClean:  chatBody("bench", cleanText),
		chatPII:    chatBody(ModelPII, piiText),
		embeddings: embeddingsBody(256),
	}
}

// ChatBody returns the exact non-streaming chat response body for model.
func (s *Server) ChatBody(model string) []byte {
	if model == ModelPII {
		return s.chatPII
	}
	return s.chatClean
}

func chatBody(model, text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"id":      "chatcmpl-bench",
		"object":  "chat.completion",
		"created": 1764115200,
		"model":   model,
		"choices": []any{map[string]any{
			"index":         0,
			"message":       map[string]any{"role": "assistant", "content": text},
			"finish_reason": "stop",
		}},
		"usage": map[string]int{"prompt_tokens": 24, "completion_tokens": 180, "total_tokens": 204},
	})
	return b
}

func embeddingsBody(dim int) []byte {
	v := make([]float64, dim)
	for i := range v {
		v[i] = float64((i*7919)%2000-1000) / 1000
	}
	b, _ := json.Marshal(map[string]any{
		"object": "list",
		"data":   []any{map[string]any{"object": "embedding", "index": 0, "embedding": v}},
		"model":  "bench-embed",
		"usage":  map[string]int{"prompt_tokens": 8, "total_tokens": 8},
	})
	return b
}

// ServeHTTP answers POST /v1/chat/completions (JSON or SSE when the body
// says "stream": true), POST /v1/embeddings and GET /healthz.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	switch {
	case r.URL.Path == "/healthz":
		w.WriteHeader(http.StatusOK)
	case r.URL.Path == "/v1/chat/completions" && r.Method == http.MethodPost:
		req, err := readRequest(r)
		if err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		if req.Stream {
			s.stream(w, r, req.Model)
			return
		}
		writeJSON(w, s.ChatBody(req.Model))
	case r.URL.Path == "/v1/embeddings" && r.Method == http.MethodPost:
		if _, err := readRequest(r); err != nil {
			http.Error(w, err.Error(), http.StatusBadRequest)
			return
		}
		writeJSON(w, s.embeddings)
	default:
		http.NotFound(w, r)
	}
}

type request struct {
	Model  string `json:"model"`
	Stream bool   `json:"stream"`
}

func readRequest(r *http.Request) (request, error) {
	var req request
	body, err := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	if err != nil {
		return req, fmt.Errorf("read body: %w", err)
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return req, fmt.Errorf("decode body: %w", err)
	}
	return req, nil
}

func writeJSON(w http.ResponseWriter, b []byte) {
	h := w.Header()
	h["Content-Type"] = []string{"application/json"}
	h["Content-Length"] = []string{strconv.Itoa(len(b))}
	_, _ = w.Write(b)
}

// StreamDeltas returns the content deltas of a stream for model, ending
// with StreamEnd. For ModelPII an email address is split across three
// deltas, so a masker must hold back across delta boundaries to catch it.
func StreamDeltas(model string, n int) []string {
	words := strings.Fields(cleanText)
	if model == ModelPII {
		words = append([]string{"Contact", "jane.", "doe@exa", "mple.com", "or", "+1", "415", "555", "0134."}, words...)
	}
	out := make([]string, 0, n)
	for i := 0; i < n-1; i++ {
		w := words[i%len(words)]
		if i > 0 && !(model == ModelPII && (i == 2 || i == 3)) {
			w = " " + w
		}
		out = append(out, w)
	}
	return append(out, StreamEnd)
}

func (s *Server) stream(w http.ResponseWriter, r *http.Request, model string) {
	rc := http.NewResponseController(w)
	h := w.Header()
	h.Set("Content-Type", "text/event-stream")
	h.Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	// Like OpenAI, the first event carries the role and no content, so a
	// proxy can forward it at once; TTFT counts to the first content.
	if _, err := w.Write(chunk(model, true, "", "")); err != nil {
		return
	}
	_ = rc.Flush()
	var t *time.Timer
	for i, d := range StreamDeltas(model, s.opts.StreamDeltas) {
		if i > 0 && s.opts.StreamPace > 0 {
			if t == nil {
				t = time.NewTimer(s.opts.StreamPace)
			} else {
				t.Reset(s.opts.StreamPace)
			}
			select {
			case <-t.C:
			case <-r.Context().Done():
				return
			}
		}
		if _, err := w.Write(chunk(model, false, d, "")); err != nil {
			return
		}
		_ = rc.Flush()
	}
	_, _ = w.Write(chunk(model, false, "", "stop"))
	_, _ = io.WriteString(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

func chunk(model string, first bool, content, finish string) []byte {
	delta := map[string]string{}
	if first {
		delta["role"] = "assistant"
		delta["content"] = ""
	}
	if content != "" {
		delta["content"] = content
	}
	var fin any
	if finish != "" {
		fin = finish
	}
	b, _ := json.Marshal(map[string]any{
		"id":      "chatcmpl-bench",
		"object":  "chat.completion.chunk",
		"created": 1764115200,
		"model":   model,
		"choices": []any{map[string]any{"index": 0, "delta": delta, "finish_reason": fin}},
	})
	out := make([]byte, 0, len(b)+8)
	out = append(out, "data: "...)
	out = append(out, b...)
	return append(out, '\n', '\n')
}
