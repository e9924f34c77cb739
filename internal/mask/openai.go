package mask

// The OpenAI side of the SSE masker: which members of an event are channel
// text, how held text is flushed in the shape of the channel's own events.

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/go-json-experiment/json"
	"github.com/go-json-experiment/json/jsontext"
)

// chatFlushEvent builds a chat/legacy completion chunk carrying text for
// channel c, with the identifying top-level fields of the stream.
func (s *sseMasker) chatFlushEvent(c *channel, text string) string {
	var top map[string]jsontext.Value
	_ = json.Unmarshal([]byte(c.template), &top)
	var b []byte
	b = append(b, '{')
	for _, k := range []string{"id", "object", "created", "model", "system_fingerprint"} {
		if v, ok := top[k]; ok {
			b, _ = jsontext.AppendQuote(b, k)
			b = append(b, ':')
			b = append(b, v...)
			b = append(b, ',')
		}
	}
	b = append(b, `"choices":[{"index":`...)
	b = strconv.AppendInt(b, int64(c.choice), 10)
	switch c.kind {
	case chLegacy:
		b = append(b, `,"text":`...)
		b, _ = jsontext.AppendQuote(b, text)
	case chChatTool:
		b = append(b, `,"delta":{"tool_calls":[{"index":`...)
		b = strconv.AppendInt(b, int64(c.tool), 10)
		b = append(b, `,"function":{"arguments":`...)
		b, _ = jsontext.AppendQuote(b, text)
		b = append(b, `}}]}`...)
	default:
		b = append(b, `,"delta":{`...)
		b, _ = jsontext.AppendQuote(b, c.field)
		b = append(b, ':')
		b, _ = jsontext.AppendQuote(b, text)
		b = append(b, '}')
	}
	b = append(b, `,"finish_reason":null}]}`...)
	return string(b)
}

// replaceTop returns the JSON object data with its top-level member name set
// to the string val (other members kept byte for byte).
func replaceTop(data string, name, val string) (string, error) {
	dec := jsontext.NewDecoder(strings.NewReader(data), jsontext.AllowDuplicateNames(true))
	if _, err := dec.ReadToken(); err != nil {
		return "", err
	}
	for dec.PeekKind() == '"' {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", err
		}
		match := tok.String() == name
		raw, err := dec.ReadValue()
		if err != nil {
			return "", err
		}
		if match {
			end := int(dec.InputOffset())
			start := end - len(raw)
			out := append([]byte(nil), data[:start]...)
			out, _ = jsontext.AppendQuote(out, val)
			return string(append(out, data[end:]...)), nil
		}
	}
	return "", errors.New("member not found")
}

// optInt is an optional integer member.
type optInt struct {
	v  int
	ok bool
}

func (o optInt) or(d int) int {
	if o.ok {
		return o.v
	}
	return d
}

// openAIIndices is the part of an OpenAI event needed to name channels.
type openAIIndices struct {
	Type                                    string
	OutputIndex, ContentIndex, SummaryIndex optInt
	Choices                                 []choiceIndices
}

type choiceIndices struct {
	Index     optInt
	Finishing bool // finish_reason is a non-empty string
	HasDelta  bool
	Tools     []optInt // delta.tool_calls[t].index
}

// Member names parseIndices looks at.
const (
	nOther = iota
	nType
	nOutputIndex
	nContentIndex
	nSummaryIndex
	nChoices
	nIndex
	nFinishReason
	nDelta
	nToolCalls
)

func memberName(raw []byte) int {
	switch string(raw) {
	case `"type"`:
		return nType
	case `"output_index"`:
		return nOutputIndex
	case `"content_index"`:
		return nContentIndex
	case `"summary_index"`:
		return nSummaryIndex
	case `"choices"`:
		return nChoices
	case `"index"`:
		return nIndex
	case `"finish_reason"`:
		return nFinishReason
	case `"delta"`:
		return nDelta
	case `"tool_calls"`:
		return nToolCalls
	}
	return nOther
}

func atoi(raw []byte) optInt {
	if len(raw) == 0 || len(raw) > 9 {
		return optInt{}
	}
	v := 0
	for _, c := range raw {
		if c < '0' || c > '9' {
			return optInt{}
		}
		v = v*10 + int(c-'0')
	}
	return optInt{v, true}
}

// errNotObject marks valid JSON that is not an object.
var errNotObject = errors.New("not a JSON object")

// parseIndices reads the indices of an OpenAI event in one token pass, without
// reflection (this runs for every streamed chunk). It fails on invalid JSON.
func parseIndices(data string, ix *openAIIndices) error {
	jd := decoderPool.Get().(*jsonDecoder)
	defer decoderPool.Put(jd)
	jd.r.Reset(data)
	dec := jd.dec
	dec.Reset(&jd.r, jsontext.AllowDuplicateNames(true))
	var names [8]int
	name := func(d int) int {
		if d < len(names) {
			return names[d]
		}
		return nOther
	}
	first := true
	for {
		kind := dec.PeekKind()
		if kind == 0 {
			_, err := dec.ReadToken()
			if errors.Is(err, io.EOF) {
				return nil
			}
			return err
		}
		if !first && dec.StackDepth() == 0 {
			return errNotOneValue
		}
		if first && kind != '{' {
			if _, err := dec.ReadValue(); err != nil {
				return err
			}
			return errNotObject
		}
		first = false
		depth := dec.StackDepth()
		top, length := dec.StackIndex(depth)
		if top == '{' && length%2 == 0 && kind != '}' {
			raw, err := dec.ReadValue()
			if err != nil {
				return err
			}
			if depth < len(names) {
				names[depth] = memberName(raw)
			}
			continue
		}
		inChoice := depth == 3 && name(1) == nChoices
		inTool := depth == 6 && name(1) == nChoices && name(3) == nDelta && name(4) == nToolCalls
		switch kind {
		case '{', '[', '}', ']':
			if _, err := dec.ReadToken(); err != nil {
				return err
			}
			if kind == '{' {
				if d := depth + 1; d < len(names) {
					names[d] = nOther
				}
				switch {
				case depth == 2 && name(1) == nChoices:
					ix.Choices = append(ix.Choices, choiceIndices{})
				case inChoice && name(3) == nDelta && len(ix.Choices) > 0:
					ix.Choices[len(ix.Choices)-1].HasDelta = true
				case depth == 5 && name(1) == nChoices && name(3) == nDelta && name(4) == nToolCalls && len(ix.Choices) > 0:
					c := &ix.Choices[len(ix.Choices)-1]
					c.Tools = append(c.Tools, optInt{})
				}
			}
			continue
		}
		raw, err := dec.ReadValue()
		if err != nil {
			return err
		}
		switch {
		case depth == 1:
			switch name(1) {
			case nType:
				if kind == '"' {
					ix.Type = unquote(string(raw))
				}
			case nOutputIndex:
				ix.OutputIndex = atoi(raw)
			case nContentIndex:
				ix.ContentIndex = atoi(raw)
			case nSummaryIndex:
				ix.SummaryIndex = atoi(raw)
			}
		case inChoice && len(ix.Choices) > 0:
			c := &ix.Choices[len(ix.Choices)-1]
			switch name(3) {
			case nIndex:
				c.Index = atoi(raw)
			case nFinishReason:
				c.Finishing = kind == '"' && len(raw) > 2
			}
		case inTool && name(6) == nIndex && len(ix.Choices) > 0:
			c := &ix.Choices[len(ix.Choices)-1]
			if len(c.Tools) > 0 {
				c.Tools[len(c.Tools)-1] = atoi(raw)
			}
		}
	}
}

var chatFields = map[string]bool{"content": true, "reasoning_content": true, "reasoning": true, "refusal": true}

// openAIEvent masks one OpenAI event; delta text goes through its channel.
// drop reports an event that only carried text now held back entirely: it
// is left out, so that the flush event that later carries the text does not
// make the stream longer.
func (s *sseMasker) openAIEvent(ev sseEvent, data string) (out string, drop bool, err error) {
	var ix openAIIndices
	if err := parseIndices(data, &ix); err != nil {
		if !errors.Is(err, errNotObject) {
			return "", false, err
		}
		// Valid JSON of another shape (an array, a string): mask it as a document.
		out, _, err := s.m.rewriteJSON(data, s.rec, "sse:", nil)
		return out, false, err
	}
	raw := data

	// Responses API.
	if strings.HasPrefix(ix.Type, "response.") || ix.Type == "error" {
		oi, ci := ix.OutputIndex.or(0), ix.ContentIndex.or(ix.SummaryIndex.or(0))
		switch {
		case strings.HasSuffix(ix.Type, ".delta") && ix.Type != "response.audio.delta":
			base := strings.TrimSuffix(strings.TrimPrefix(ix.Type, "response."), ".delta")
			key := fmt.Sprintf("output[%d].content[%d].%s", oi, ci, base)
			c := s.channel(key, func(c *channel) { c.kind = chResponses })
			c.template = raw
			c.eventName = ev.name
			emptied := false
			out, _, err := s.m.rewriteJSON(raw, s.rec, "sse:", func(ptr jsontext.Pointer, val string) (string, bool) {
				if ptr != "/delta" {
					return "", false
				}
				o := string(c.ts.Write(nil, val))
				emptied = val != "" && o == ""
				return o, true
			})
			return out, emptied, err
		case strings.HasSuffix(ix.Type, ".done"):
			base := strings.TrimSuffix(strings.TrimPrefix(ix.Type, "response."), ".done")
			if c, ok := s.channels[fmt.Sprintf("output[%d].content[%d].%s", oi, ci, base)]; ok {
				s.flushChannel(c)
			}
		case ix.Type == "response.completed" || ix.Type == "response.failed" || ix.Type == "response.incomplete" || ix.Type == "error":
			s.ended = true
			s.flushAll()
		}
		out, _, err := s.m.rewriteJSON(raw, s.rec, "sse:", nil)
		return out, false, err
	}

	if len(ix.Choices) == 0 {
		out, _, err := s.m.rewriteJSON(raw, s.rec, "sse:", nil)
		return out, false, err
	}

	// Chat completions and legacy completions.
	choiceIdx := func(k int) int {
		if k < len(ix.Choices) {
			return ix.Choices[k].Index.or(k)
		}
		return k
	}
	finishing := map[int]bool{}
	for k, c := range ix.Choices {
		if c.Finishing {
			finishing[choiceIdx(k)] = true
		}
	}
	present := map[string]bool{}
	emptied, emitted := false, false
	var toks []string
	hook := func(ptr jsontext.Pointer, val string) (string, bool) {
		toks = splitPointer(toks[:0], string(ptr))
		if len(toks) < 3 || toks[0] != "choices" {
			return "", false
		}
		k, err := strconv.Atoi(toks[1])
		if err != nil {
			return "", false
		}
		i := choiceIdx(k)
		var key string
		var init func(*channel)
		switch {
		case len(toks) == 3 && toks[2] == "text":
			key = fmt.Sprintf("choices[%d].text", i)
			init = func(c *channel) { c.kind, c.choice = chLegacy, i }
		case len(toks) == 4 && toks[2] == "delta" && chatFields[toks[3]]:
			f := toks[3]
			key = fmt.Sprintf("choices[%d].delta.%s", i, f)
			init = func(c *channel) { c.kind, c.choice, c.field = chChatField, i, f }
		case len(toks) == 7 && toks[2] == "delta" && toks[3] == "tool_calls" && toks[5] == "function" && toks[6] == "arguments":
			t, err := strconv.Atoi(toks[4])
			if err != nil {
				return "", false
			}
			j := t
			if tools := ix.Choices[k].Tools; t < len(tools) {
				j = tools[t].or(t)
			}
			key = fmt.Sprintf("choices[%d].tool_calls[%d].arguments", i, j)
			init = func(c *channel) { c.kind, c.choice, c.tool = chChatTool, i, j }
		default:
			return "", false
		}
		c := s.channel(key, init)
		c.template, c.eventName = raw, ev.name
		present[key] = true
		o := c.ts.Write(nil, val)
		if finishing[i] {
			o = c.ts.Flush(o)
		}
		if len(o) > 0 {
			emitted = true
		} else if val != "" {
			emptied = true
		}
		return string(o), true
	}
	out, _, err = s.m.rewriteJSON(raw, s.rec, "sse:", hook)
	if err != nil {
		return "", false, err
	}
	if len(finishing) > 0 {
		// Held text of a finishing choice whose channel is not in this
		// event goes into the event's delta (or, failing that, into an
		// event of its own) before the finish_reason reaches the client.
		for k, ch := range ix.Choices {
			i := choiceIdx(k)
			if !finishing[i] {
				continue
			}
			var members []byte
			for _, c := range s.order {
				if c.kind != chChatField || c.choice != i || present[c.key] || c.ts.Pending() == 0 {
					continue
				}
				text := string(c.ts.Flush(nil))
				if text == "" {
					continue
				}
				if len(members) > 0 {
					members = append(members, ',')
				}
				members, _ = jsontext.AppendQuote(members, c.field)
				members = append(members, ':')
				members, _ = jsontext.AppendQuote(members, text)
			}
			if len(members) > 0 {
				if !ch.HasDelta {
					return "", false, errors.New("finishing chunk without a delta")
				}
				if out, err = insertMembers(out, "/choices/"+strconv.Itoa(k)+"/delta", members); err != nil {
					return "", false, err
				}
			}
		}
		for _, c := range s.order {
			if c.kind != chGeneric && c.kind != chResponses && finishing[c.choice] && !present[c.key] {
				s.flushChannel(c)
			}
		}
	}
	if emptied && !emitted && len(finishing) == 0 && onlyText(raw) {
		return out, true, nil
	}
	return out, false, nil
}

// insertMembers inserts the object members (`"k":v,...`) at the start of the
// object at pointer ptr in doc.
func insertMembers(doc, ptr string, members []byte) (string, error) {
	dec := jsontext.NewDecoder(strings.NewReader(doc))
	for {
		tok, err := dec.ReadToken()
		if err != nil {
			return "", fmt.Errorf("no object at %s: %w", ptr, err)
		}
		if tok.Kind() == '{' && string(dec.StackPointer()) == ptr {
			at := int(dec.InputOffset())
			sep := ","
			if dec.PeekKind() == '}' {
				sep = ""
			}
			return doc[:at] + string(members) + sep + doc[at:], nil
		}
	}
}

// onlyText reports a chat/legacy chunk that carries nothing but text: no
// usage, no finish_reason, no logprobs, no role, no tool-call header; such
// a chunk whose text was all held back can be left out.
func onlyText(data string) bool {
	var probe struct {
		Usage   jsontext.Value              `json:"usage"`
		Choices []map[string]jsontext.Value `json:"choices"`
	}
	if err := json.Unmarshal([]byte(data), &probe); err != nil {
		return false
	}
	if len(probe.Usage) > 0 && string(probe.Usage) != "null" {
		return false
	}
	for _, c := range probe.Choices {
		for k, v := range c {
			switch k {
			case "index", "text":
			case "finish_reason", "logprobs":
				if string(v) != "null" {
					return false
				}
			case "delta":
				var d map[string]jsontext.Value
				if json.Unmarshal(v, &d) != nil {
					return false
				}
				for dk := range d {
					if !chatFields[dk] {
						return false
					}
				}
			default:
				return false
			}
		}
	}
	return true
}

// splitPointer splits a JSON pointer into its reference tokens without
// unescaping (~0, ~1 do not occur in the names the masker looks for).
func splitPointer(dst []string, ptr string) []string {
	for len(ptr) > 0 && ptr[0] == '/' {
		ptr = ptr[1:]
		i := strings.IndexByte(ptr, '/')
		if i < 0 {
			return append(dst, ptr)
		}
		dst = append(dst, ptr[:i])
		ptr = ptr[i:]
	}
	return dst
}
