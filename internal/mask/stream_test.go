package mask

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"strings"
	"testing"
	"unicode/utf8"
)

// leakCorpus pairs texts with the raw values that must never reach the
// caller, in any event or any concatenation of events.
var leakCorpus = []struct {
	text string
	raw  []string
}{
	{"Your card 4111 1111 1111 1111 was charged; receipt to John.Doe+billing@Example.com.",
		[]string{"4111 1111 1111 1111", "John.Doe+billing@Example.com"}},
	{"Call me at (415) 555-2671 or +44 20 7946 0958 tomorrow.",
		[]string{"(415) 555-2671", "+44 20 7946 0958", "555-2671", "7946 0958"}},
	{"IBAN: GB82 WEST 1234 5698 7654 32\nSSN 123-45-6789 end",
		[]string{"GB82 WEST 1234 5698 7654 32", "123-45-6789", "5698 7654"}},
	{"ｆｕｌｌ-width ４１１１ １１１１ １１１１ １１１１ and zw 5\u200b500\u200b 0055 5555 5559!",
		[]string{"４１１１ １１１１ １１１１ １１１１", "5\u200b500\u200b 0055 5555 5559"}},
	{"nbsp 4111\u00a01111\u20131111\u20141111 then DE89370400440532013000 done",
		[]string{"4111\u00a01111\u20131111\u20141111", "DE89370400440532013000"}},
	{"two cards 4111111111111111 5500005555555559 in a row, then mail a@b.io",
		[]string{"4111111111111111", "5500005555555559", "a@b.io"}},
	{strings.Repeat("12 ", 40) + "4111 1111 1111 1111 " + strings.Repeat("7 ", 30) + "x",
		[]string{"4111 1111 1111 1111"}},
	{"plain text with numbers 2024 and 1700000000008 but no PII at all.", nil},
	// Issue 12: wrapped groups, labels before a bare number, lower-case
	// IBANs, 19-digit cards.
	{"card 4111 1111\n1111 1111 and\n5500 0055 \n 5555 5559 end 1234\n\n5678",
		[]string{"4111 1111\n1111 1111", "5500 0055 \n 5555 5559"}},
	{"her SSN: 123456789, his ssn=387654320 and social security number 234567890.",
		[]string{"123456789", "387654320", "234567890"}},
	{"iban de89 3704 0044 0532 0130 00. IBAN GB82 WEST 1234 5698 7654 32.",
		[]string{"de89 3704 0044 0532 0130 00", "GB82 WEST 1234 5698 7654 32", "3704 0044 0532"}},
	{"visa 4000 0000 0000 0000 006 and 6011 0000 0000 0000 001 ok",
		[]string{"4000 0000 0000 0000 006", "6011 0000 0000 0000 001"}},
}

// digitsOf keeps the digits of s after normalization (so a leak through
// full-width or separated digits is still seen).
func digitsOf(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); {
		cls, nb, size := classify(s, i, true, false)
		if cls == cToken && isDigit(nb) {
			b.WriteByte(nb)
		}
		i += size
	}
	return b.String()
}

func checkNoLeak(t *testing.T, what, got string, raw []string) {
	t.Helper()
	for _, r := range raw {
		if strings.Contains(got, r) {
			t.Fatalf("%s leaks %q: %q", what, r, got)
		}
		if d := digitsOf(r); len(d) >= 8 && strings.Contains(digitsOf(got), d) {
			t.Fatalf("%s leaks the digits of %q: %q", what, r, got)
		}
	}
}

// runeSplits splits s at the given rune-boundary byte offsets.
func splitAt(s string, offs []int) []string {
	var out []string
	last := 0
	for _, o := range offs {
		out = append(out, s[last:o])
		last = o
	}
	return append(out, s[last:])
}

func randomCuts(r *rand.Rand, s string, maxPiece int, runeAligned bool) []int {
	var offs []int
	for i := 0; i < len(s); {
		i += 1 + r.IntN(maxPiece)
		for runeAligned && i < len(s) && !utf8.RuneStart(s[i]) {
			i++
		}
		if i < len(s) {
			offs = append(offs, i)
		}
	}
	return offs
}

func runeCuts(s string) []int {
	var offs []int
	for i := range s {
		if i > 0 {
			offs = append(offs, i)
		}
	}
	return offs
}

func TestTextStreamEqualsMaskText(t *testing.T) {
	m := defaultMasker(t)
	r := rand.New(rand.NewPCG(1, 2))
	for ci, c := range leakCorpus {
		want := m.MaskText(c.text, "t", nil)
		checkNoLeak(t, "MaskText", want, c.raw)
		run := func(pieces []string) {
			ts := m.NewTextStream("t", nil)
			var out []byte
			for _, p := range pieces {
				before := len(out)
				out = ts.Write(out, p)
				checkNoLeak(t, fmt.Sprintf("corpus %d emitted piece", ci), string(out[before:]), c.raw)
				if ts.Pending() > 8*m.HoldBack()+64+16 {
					t.Fatalf("holding %d bytes", ts.Pending())
				}
			}
			out = ts.Flush(out)
			if string(out) != want {
				t.Fatalf("corpus %d pieces %q:\n got %q\nwant %q", ci, pieces, out, want)
			}
		}
		// Every byte offset (pieces may cut a UTF-8 sequence).
		for k := 1; k < len(c.text); k++ {
			run([]string{c.text[:k], c.text[k:]})
		}
		// One byte at a time, one rune at a time, random pieces.
		var bytesOne []int
		for k := 1; k < len(c.text); k++ {
			bytesOne = append(bytesOne, k)
		}
		run(splitAt(c.text, bytesOne))
		run(splitAt(c.text, runeCuts(c.text)))
		for range 200 {
			run(splitAt(c.text, randomCuts(r, c.text, 12, false)))
		}
	}
}

// ---- SSE helpers ----

type sseOut struct {
	name string
	data string
}

func parseSSE(t *testing.T, b []byte) []sseOut {
	t.Helper()
	var evs []sseOut
	for _, block := range strings.Split(string(b), "\n\n") {
		if block == "" {
			continue
		}
		var ev sseOut
		var data []string
		hasData := false
		for _, line := range strings.Split(block, "\n") {
			if strings.HasPrefix(line, ":") {
				continue
			}
			k, v, _ := strings.Cut(line, ":")
			v = strings.TrimPrefix(v, " ")
			switch k {
			case "event":
				ev.name = v
			case "data":
				data = append(data, v)
				hasData = true
			}
		}
		if hasData {
			ev.data = strings.Join(data, "\n")
			evs = append(evs, ev)
		}
	}
	return evs
}

// chunkReader returns the stream in the given pieces.
type chunkReader struct{ pieces [][]byte }

func (c *chunkReader) Read(p []byte) (int, error) {
	for len(c.pieces) > 0 && len(c.pieces[0]) == 0 {
		c.pieces = c.pieces[1:]
	}
	if len(c.pieces) == 0 {
		return 0, io.EOF
	}
	n := copy(p, c.pieces[0])
	c.pieces[0] = c.pieces[0][n:]
	return n, nil
}

func chunked(b []byte, offs []int) *chunkReader {
	var pieces [][]byte
	last := 0
	for _, o := range offs {
		pieces = append(pieces, b[last:o])
		last = o
	}
	return &chunkReader{append(pieces, b[last:])}
}

// maskSSE runs stream through the SSE masker as WrapResponse would.
func maskSSE(t *testing.T, m *Masker, kind StreamKind, src io.Reader, rec *Recorder) []byte {
	t.Helper()
	r := &maskReader{src: src, closer: io.NopCloser(nil), proc: &sseProc{s: newSSEMasker(m, rec, kind)}, buf: make([]byte, 4096)}
	out, err := io.ReadAll(r)
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func jstr(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

func chatStream(choices map[int][]string, order []int, crlf bool) []byte {
	var b strings.Builder
	nl := "\n"
	if crlf {
		nl = "\r\n"
	}
	ev := func(data string) { b.WriteString("data: " + data + nl + nl) }
	head := `{"id":"chatcmpl-1","object":"chat.completion.chunk","created":1,"model":"m","choices":[`
	for i := range choices {
		ev(head + fmt.Sprintf(`{"index":%d,"delta":{"role":"assistant","content":""},"finish_reason":null}]}`, i))
	}
	pos := map[int]int{}
	for _, i := range order {
		d := choices[i][pos[i]]
		pos[i]++
		ev(head + fmt.Sprintf(`{"index":%d,"delta":{"content":%s},"finish_reason":null}]}`, i, jstr(d)))
	}
	b.WriteString(": keep-alive" + nl)
	for i := range choices {
		ev(head + fmt.Sprintf(`{"index":%d,"delta":{},"finish_reason":"stop"}]}`, i))
	}
	ev(`[DONE]`)
	return []byte(b.String())
}

type chunkJSON struct {
	Choices []struct {
		Index int `json:"index"`
		Delta struct {
			Content   *string `json:"content"`
			ToolCalls []struct {
				Index    int `json:"index"`
				Function struct {
					Arguments string `json:"arguments"`
				} `json:"function"`
			} `json:"tool_calls"`
		} `json:"delta"`
		Text         string  `json:"text"`
		FinishReason *string `json:"finish_reason"`
	} `json:"choices"`
}

// collectChat checks the event structure and returns each choice's text.
func collectChat(t *testing.T, evs []sseOut, raw []string) map[int]string {
	t.Helper()
	texts := map[int]string{}
	finished := map[int]bool{}
	for i, ev := range evs {
		checkNoLeak(t, "event", ev.data, raw)
		if ev.data == "[DONE]" {
			if i != len(evs)-1 {
				t.Fatalf("[DONE] is not last")
			}
			continue
		}
		var c chunkJSON
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatalf("event %q: %v", ev.data, err)
		}
		for _, ch := range c.Choices {
			text := ch.Text
			if ch.Delta.Content != nil {
				text += *ch.Delta.Content
			}
			for _, tc := range ch.Delta.ToolCalls {
				text += tc.Function.Arguments
			}
			if text != "" && finished[ch.Index] {
				t.Fatalf("text for choice %d after its finish_reason", ch.Index)
			}
			texts[ch.Index] += text
			if ch.FinishReason != nil {
				finished[ch.Index] = true
			}
		}
	}
	if len(evs) == 0 || evs[len(evs)-1].data != "[DONE]" {
		t.Fatalf("stream does not end with [DONE]")
	}
	for _, s := range texts {
		checkNoLeak(t, "concatenation", s, raw)
	}
	return texts
}

func TestSSEOpenAILeakProperty(t *testing.T) {
	m := defaultMasker(t)
	r := rand.New(rand.NewPCG(3, 4))
	for ci, c := range leakCorpus {
		want := m.MaskText(c.text, "t", nil)
		check := func(deltas []string, byteCuts func([]byte) []int, crlf bool) {
			order := make([]int, len(deltas))
			stream := chatStream(map[int][]string{0: deltas}, order, crlf)
			var cuts []int
			if byteCuts != nil {
				cuts = byteCuts(stream)
			}
			out := maskSSE(t, m, StreamOpenAI, chunked(stream, cuts), nil)
			evs := parseSSE(t, out)
			if in := len(parseSSE(t, bytes.ReplaceAll(stream, []byte("\r\n"), []byte("\n")))); len(evs) > in {
				t.Fatalf("corpus %d: %d events out of %d", ci, len(evs), in)
			}
			got := collectChat(t, evs, c.raw)[0]
			if got != want {
				t.Fatalf("corpus %d deltas %q:\n got %q\nwant %q", ci, deltas, got, want)
			}
		}
		// Two deltas split at every rune offset.
		for _, k := range runeCuts(c.text) {
			check([]string{c.text[:k], c.text[k:]}, nil, false)
		}
		// One character per event, with the byte stream cut at every offset.
		perChar := splitAt(c.text, runeCuts(c.text))
		if ci < 3 {
			stream := chatStream(map[int][]string{0: perChar}, make([]int, len(perChar)), false)
			for k := 1; k < len(stream); k += len(stream)/40 + 1 {
				check(perChar, func([]byte) []int { return []int{k} }, k%2 == 0)
			}
		}
		// Random delta chunkings and random byte chunkings, LF and CRLF.
		for i := range 30 {
			deltas := splitAt(c.text, randomCuts(r, c.text, 10, true))
			check(deltas, func(b []byte) []int { return randomCuts(r, string(b), 40, false) }, i%2 == 1)
		}
	}
}

func TestSSEInterleavedChoicesAndTools(t *testing.T) {
	m := defaultMasker(t)
	a := "choice zero card 4111 1111 1111 1111 ok"
	b := "choice one mail jane.roe@example.org and (415) 555-2671"
	raw := []string{"4111 1111 1111 1111", "jane.roe@example.org", "(415) 555-2671"}
	da, db := splitAt(a, runeCuts(a)), splitAt(b, runeCuts(b))
	var order []int
	for i := 0; i < max(len(da), len(db)); i++ {
		if i < len(da) {
			order = append(order, 0)
		}
		if i < len(db) {
			order = append(order, 1)
		}
	}
	stream := chatStream(map[int][]string{0: da, 1: db}, order, false)
	out := maskSSE(t, m, StreamOpenAI, bytes.NewReader(stream), nil)
	texts := collectChat(t, parseSSE(t, out), raw)
	if texts[0] != m.MaskText(a, "", nil) || texts[1] != m.MaskText(b, "", nil) {
		t.Fatalf("texts %v", texts)
	}

	// Tool-call arguments, split per character, two tools in one choice.
	args := []string{`{"card":"5500 0055 5555 5559"}`, `{"email":"x.y@corp.example"}`}
	var sb strings.Builder
	head := `data: {"id":"c","object":"chat.completion.chunk","created":1,"model":"m","choices":[{"index":0,"delta":`
	for j, arg := range args {
		sb.WriteString(head + fmt.Sprintf(`{"tool_calls":[{"index":%d,"id":"call_%d","type":"function","function":{"name":"f","arguments":""}}]},"finish_reason":null}]}`+"\n\n", j, j))
		for _, ch := range splitAt(arg, runeCuts(arg)) {
			sb.WriteString(head + fmt.Sprintf(`{"tool_calls":[{"index":%d,"function":{"arguments":%s}}]},"finish_reason":null}]}`+"\n\n", j, jstr(ch)))
		}
	}
	sb.WriteString(head + `{},"finish_reason":"tool_calls"}]}` + "\n\ndata: [DONE]\n\n")
	out = maskSSE(t, m, StreamOpenAI, bytes.NewReader([]byte(sb.String())), nil)
	perTool := map[int]string{}
	for _, ev := range parseSSE(t, out) {
		checkNoLeak(t, "tool event", ev.data, []string{"5500 0055 5555 5559", "x.y@corp.example"})
		if ev.data == "[DONE]" {
			continue
		}
		var c chunkJSON
		if err := json.Unmarshal([]byte(ev.data), &c); err != nil {
			t.Fatal(err)
		}
		for _, ch := range c.Choices {
			for _, tc := range ch.Delta.ToolCalls {
				perTool[tc.Index] += tc.Function.Arguments
			}
		}
	}
	for j, arg := range args {
		if want := m.MaskText(arg, "", nil); perTool[j] != want {
			t.Errorf("tool %d args %q, want %q", j, perTool[j], want)
		}
	}
}

func TestSSELegacyAndResponses(t *testing.T) {
	m := defaultMasker(t)
	text := "Reach me at jane@example.com or 4111-1111-1111-1111."
	raw := []string{"jane@example.com", "4111-1111-1111-1111"}
	want := m.MaskText(text, "", nil)

	// Legacy completions: choices[i].text, finish in the last chunk.
	var sb strings.Builder
	for _, ch := range splitAt(text, runeCuts(text)) {
		sb.WriteString(`data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":` + jstr(ch) + `,"finish_reason":null}]}` + "\n\n")
	}
	sb.WriteString(`data: {"id":"cmpl-1","object":"text_completion","choices":[{"index":0,"text":"","finish_reason":"stop"}]}` + "\n\ndata: [DONE]\n\n")
	out := maskSSE(t, m, StreamOpenAI, bytes.NewReader([]byte(sb.String())), nil)
	if got := collectChat(t, parseSSE(t, out), raw)[0]; got != want {
		t.Fatalf("legacy: %q want %q", got, want)
	}

	// Responses API.
	sb.Reset()
	ev := func(name, data string) { sb.WriteString("event: " + name + "\ndata: " + data + "\n\n") }
	ev("response.created", `{"type":"response.created","response":{"id":"resp_1","status":"in_progress","output":[]}}`)
	for i, ch := range splitAt(text, runeCuts(text)) {
		ev("response.output_text.delta", fmt.Sprintf(`{"type":"response.output_text.delta","sequence_number":%d,"item_id":"msg_1","output_index":0,"content_index":0,"delta":%s}`, i, jstr(ch)))
	}
	ev("response.output_text.done", `{"type":"response.output_text.done","item_id":"msg_1","output_index":0,"content_index":0,"text":`+jstr(text)+`}`)
	ev("response.completed", `{"type":"response.completed","response":{"id":"resp_1","status":"completed","output":[{"type":"message","content":[{"type":"output_text","text":`+jstr(text)+`}]}]}}`)
	rec := NewRecorder()
	out = maskSSE(t, m, StreamOpenAI, bytes.NewReader([]byte(sb.String())), rec)
	var deltas, done string
	sawDone := false
	if in, n := len(parseSSE(t, []byte(sb.String()))), len(parseSSE(t, out)); n > in {
		t.Fatalf("responses: %d events out of %d", n, in)
	}
	for _, e := range parseSSE(t, out) {
		checkNoLeak(t, "responses event", e.data, raw)
		var v struct {
			Type  string `json:"type"`
			Delta string `json:"delta"`
			Text  string `json:"text"`
		}
		if err := json.Unmarshal([]byte(e.data), &v); err != nil {
			t.Fatal(err)
		}
		if v.Type != e.name {
			t.Fatalf("event name %q carries type %q", e.name, v.Type)
		}
		switch v.Type {
		case "response.output_text.delta":
			if sawDone {
				t.Fatal("delta after done")
			}
			deltas += v.Delta
		case "response.output_text.done":
			sawDone, done = true, v.Text
		}
	}
	if deltas != want || done != want {
		t.Fatalf("responses: deltas %q done %q want %q", deltas, done, want)
	}
	if rec.Total() == 0 {
		t.Fatal("no actions recorded")
	}
}

func TestSSEGenericLeakProperty(t *testing.T) {
	m := defaultMasker(t)
	r := rand.New(rand.NewPCG(5, 6))
	for ci, c := range leakCorpus {
		want := m.MaskText(c.text, "t", nil)
		check := func(pieces []string, cuts func([]byte) []int) {
			var sb strings.Builder
			for _, p := range pieces {
				for _, line := range strings.Split(p, "\n") {
					sb.WriteString("data: " + line + "\n")
				}
				sb.WriteString("\n")
			}
			stream := []byte(sb.String())
			var offs []int
			if cuts != nil {
				offs = cuts(stream)
			}
			out := maskSSE(t, m, StreamGeneric, chunked(stream, offs), nil)
			var got strings.Builder
			// Generic streams have no finishing event to carry the held
			// tail: at most one event is added at the end.
			if in, n := len(parseSSE(t, stream)), len(parseSSE(t, out)); n > in+1 {
				t.Fatalf("corpus %d: %d events out of %d", ci, n, in)
			}
			for _, ev := range parseSSE(t, out) {
				checkNoLeak(t, "generic event", ev.data, c.raw)
				got.WriteString(ev.data)
			}
			if got.String() != want {
				t.Fatalf("corpus %d pieces %q:\n got %q\nwant %q", ci, pieces, got.String(), want)
			}
		}
		for _, k := range runeCuts(c.text) {
			check([]string{c.text[:k], c.text[k:]}, nil)
		}
		check(splitAt(c.text, runeCuts(c.text)), func(b []byte) []int { return randomCuts(r, string(b), 3, false) })
		for range 60 {
			check(splitAt(c.text, randomCuts(r, c.text, 10, true)), func(b []byte) []int { return randomCuts(r, string(b), 40, false) })
		}
	}
}

func TestSSEFailClosed(t *testing.T) {
	m := defaultMasker(t)
	stream := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"hi\"}}]}\n\ndata: {\"choices\":[{\"delta\":\"4111 1111 1111 1111\"\n\ndata: {\"choices\":[]}\n\n"
	rec := NewRecorder()
	out := maskSSE(t, m, StreamOpenAI, strings.NewReader(stream), rec)
	evs := parseSSE(t, out)
	last := evs[len(evs)-1]
	if last.name != "error" || !strings.Contains(last.data, `"type":"masking_failed"`) {
		t.Fatalf("last event %+v", last)
	}
	if strings.Contains(string(out), "4111") || strings.Contains(string(out), `"choices":[]`) {
		t.Fatalf("output continues after failure: %q", out)
	}
	if rec.Failure() == "" {
		t.Fatal("failure not recorded")
	}

	// fail_closed: false masks the event as text instead.
	f := false
	m2, _ := newSet(t, Config{Profiles: map[string]Profile{"open": {FailClosed: &f}}}).Profile("open")
	out = maskSSE(t, m2, StreamOpenAI, strings.NewReader(stream), nil)
	if strings.Contains(string(out), "4111") || !strings.Contains(string(out), "[REDACTED:CREDIT_CARD]") || !strings.Contains(string(out), `"choices":[]`) {
		t.Fatalf("fail_closed=false output %q", out)
	}
}

// TestHoldBackBound: however long a candidate window grows, a stream holds
// at most about hold_back characters of it.
func TestHoldBackBound(t *testing.T) {
	for _, hb := range []int{16, 96, 300} {
		m, _ := newSet(t, Config{Profiles: map[string]Profile{"p": {HoldBack: hb}}}).Profile("p")
		for _, text := range []string{
			strings.Repeat("1 2 3 ", 400) + "4111 1111 1111 1111 end",
			strings.Repeat("x", 5000) + "@example.com end",
			strings.Repeat("AB12 ", 500),
		} {
			ts := m.NewTextStream("", nil)
			var out []byte
			maxHeld := 0
			for i := range len(text) {
				out = ts.Write(out, text[i:i+1])
				maxHeld = max(maxHeld, ts.Pending())
			}
			out = ts.Flush(out)
			// hold_back plus the look-ahead needed to decide a join (two
			// spaces and a four-character IBAN group).
			if maxHeld > hb+8 {
				t.Errorf("hold_back %d: held %d bytes of %.20q…", hb, maxHeld, text)
			}
			if want := m.MaskText(text, "", nil); string(out) != want {
				t.Errorf("hold_back %d: stream differs from MaskText", hb)
			}
		}
	}
}
