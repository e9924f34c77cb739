package devstack

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash/fnv"
	"math"
	"net/http"
	"strings"
	"sync"
	"time"
)

// DemoModels are the model names the demo model server answers for.
var DemoModels = []string{"warden-demo-small", "warden-demo-large"}

// DemoPII are the fake personal data the demo model server puts in its
// answers, so that masking has something to do. None of it is real: the
// card is a test number, the IBAN a published example.
var DemoPII = struct{ Card, Email, Phone, IBAN string }{
	Card:  "4111 1111 1111 1111",
	Email: "jane.doe@example.com",
	Phone: "+1 415 555 0132",
	IBAN:  "DE89 3704 0044 0532 0130 00",
}

// ModelServer is an OpenAI-compatible fake model server.
type ModelServer struct {
	// ChunkDelay is the pause between streamed deltas. Default 20ms.
	ChunkDelay time.Duration

	mu   sync.Mutex
	jobs []map[string]any
}

// NewModelServer returns a model server with demo defaults.
func NewModelServer() *ModelServer { return &ModelServer{ChunkDelay: 20 * time.Millisecond} }

// Handler serves the OpenAI-compatible API.
func (m *ModelServer) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /v1/models", m.models)
	mux.HandleFunc("POST /v1/chat/completions", m.chat)
	mux.HandleFunc("POST /v1/completions", m.chat)
	mux.HandleFunc("POST /v1/embeddings", m.embeddings)
	mux.HandleFunc("POST /v1/fine_tuning/jobs", m.createJob)
	mux.HandleFunc("GET /v1/fine_tuning/jobs", m.listJobs)
	mux.HandleFunc("POST /v1/exports", m.export)
	mux.HandleFunc("GET /admin/stats", m.stats)
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusNotFound, map[string]any{"error": map[string]string{"type": "not_found", "message": "the demo model server has no " + r.Method + " " + r.URL.Path}})
	})
	return mux
}

// DemoAnswer is the assistant text of every chat completion.
func DemoAnswer() string {
	return "Here is the customer record you asked for: Jane Doe, card " + DemoPII.Card +
		", email " + DemoPII.Email + ", phone " + DemoPII.Phone + ", IBAN " + DemoPII.IBAN +
		". Order 2024-11-26-0042 ships tomorrow."
}

type chatRequest struct {
	Model    string `json:"model"`
	Stream   bool   `json:"stream"`
	Messages []struct {
		Role    string `json:"role"`
		Content any    `json:"content"`
	} `json:"messages"`
	Prompt any `json:"prompt"`
}

func (m *ModelServer) decode(w http.ResponseWriter, r *http.Request, v any) bool {
	if err := json.NewDecoder(http.MaxBytesReader(w, r.Body, 8<<20)).Decode(v); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"error": map[string]string{"type": "invalid_request_error", "message": "body is not valid JSON: " + err.Error()}})
		return false
	}
	return true
}

func (m *ModelServer) models(w http.ResponseWriter, _ *http.Request) {
	var data []map[string]any
	for _, id := range DemoModels {
		data = append(data, map[string]any{"id": id, "object": "model", "owned_by": "warden-demo"})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": data})
}

func (m *ModelServer) chat(w http.ResponseWriter, r *http.Request) {
	var req chatRequest
	if !m.decode(w, r, &req) {
		return
	}
	if req.Model == "" {
		req.Model = DemoModels[0]
	}
	legacy := strings.HasSuffix(r.URL.Path, "/completions") && !strings.Contains(r.URL.Path, "chat")
	id := "chatcmpl-" + randomID()
	created := time.Now().Unix()
	answer := DemoAnswer()
	if !req.Stream {
		choice := map[string]any{"index": 0, "finish_reason": "stop"}
		obj := "chat.completion"
		if legacy {
			choice["text"] = answer
			obj = "text_completion"
		} else {
			choice["message"] = map[string]any{"role": "assistant", "content": answer}
		}
		writeJSON(w, http.StatusOK, map[string]any{
			"id": id, "object": obj, "created": created, "model": req.Model,
			"choices": []any{choice},
			"usage":   map[string]int{"prompt_tokens": 12, "completion_tokens": 48, "total_tokens": 60},
		})
		return
	}
	w.Header().Set("Content-Type", "text/event-stream")
	w.Header().Set("Cache-Control", "no-cache")
	w.WriteHeader(http.StatusOK)
	rc := http.NewResponseController(w)
	send := func(v any) bool {
		b, _ := json.Marshal(v)
		if _, err := fmt.Fprintf(w, "data: %s\n\n", b); err != nil {
			return false
		}
		return rc.Flush() == nil
	}
	chunk := func(delta map[string]any, finish any) map[string]any {
		c := map[string]any{"index": 0, "finish_reason": finish}
		if legacy {
			c["text"] = delta["content"]
		} else {
			c["delta"] = delta
		}
		return map[string]any{"id": id, "object": "chat.completion.chunk", "created": created, "model": req.Model, "choices": []any{c}}
	}
	if !send(chunk(map[string]any{"role": "assistant", "content": ""}, nil)) {
		return
	}
	// Deltas of 3 to 6 characters, so that every PII value is split over
	// several events: masking must reassemble them.
	for _, piece := range splitText(answer) {
		if m.ChunkDelay > 0 {
			select {
			case <-time.After(m.ChunkDelay):
			case <-r.Context().Done():
				return
			}
		}
		if !send(chunk(map[string]any{"content": piece}, nil)) {
			return
		}
	}
	send(chunk(map[string]any{}, "stop"))
	_, _ = fmt.Fprint(w, "data: [DONE]\n\n")
	_ = rc.Flush()
}

func splitText(s string) []string {
	var out []string
	for i, n := 0, 0; i < len(s); i += n {
		n = 3 + (i/3)%4
		if i+n > len(s) {
			n = len(s) - i
		}
		out = append(out, s[i:i+n])
	}
	return out
}

func (m *ModelServer) embeddings(w http.ResponseWriter, r *http.Request) {
	var req struct {
		Model string `json:"model"`
		Input any    `json:"input"`
	}
	if !m.decode(w, r, &req) {
		return
	}
	var inputs []string
	switch v := req.Input.(type) {
	case string:
		inputs = []string{v}
	case []any:
		for _, x := range v {
			inputs = append(inputs, fmt.Sprint(x))
		}
	}
	var data []any
	for i, in := range inputs {
		data = append(data, map[string]any{"object": "embedding", "index": i, "embedding": pseudoEmbedding(in, 8)})
	}
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "model": req.Model, "data": data,
		"usage": map[string]int{"prompt_tokens": len(inputs) * 4, "total_tokens": len(inputs) * 4}})
}

// pseudoEmbedding derives a deterministic unit vector from text.
func pseudoEmbedding(s string, dims int) []float64 {
	v := make([]float64, dims)
	var norm float64
	for i := range v {
		h := fnv.New64a()
		fmt.Fprintf(h, "%d:%s", i, s)
		v[i] = float64(h.Sum64()%2000)/1000 - 1
		norm += v[i] * v[i]
	}
	for i := range v {
		v[i] = math.Round(v[i]/math.Sqrt(norm)*1e6) / 1e6
	}
	return v
}

func (m *ModelServer) createJob(w http.ResponseWriter, r *http.Request) {
	var req map[string]any
	if !m.decode(w, r, &req) {
		return
	}
	job := map[string]any{"id": "ftjob-" + randomID(), "object": "fine_tuning.job", "model": req["model"],
		"training_file": req["training_file"], "status": "queued", "created_at": time.Now().Unix()}
	m.mu.Lock()
	m.jobs = append(m.jobs, job)
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, job)
}

func (m *ModelServer) listJobs(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	jobs := append([]map[string]any(nil), m.jobs...)
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"object": "list", "data": jobs})
}

func (m *ModelServer) export(w http.ResponseWriter, _ *http.Request) {
	writeJSON(w, http.StatusOK, map[string]any{"object": "export", "records": []any{
		map[string]any{"customer": "Jane Doe", "email": DemoPII.Email, "card": DemoPII.Card, "phone": DemoPII.Phone},
		map[string]any{"customer": "John Roe", "email": "john.roe@example.org", "card": "5500 0000 0000 0004", "phone": "+44 20 7946 0958"},
	}})
}

func (m *ModelServer) stats(w http.ResponseWriter, _ *http.Request) {
	m.mu.Lock()
	n := len(m.jobs)
	m.mu.Unlock()
	writeJSON(w, http.StatusOK, map[string]any{"fine_tuning_jobs": n, "models": DemoModels})
}

func randomID() string {
	var b [8]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
