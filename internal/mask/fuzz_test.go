package mask

import (
	"strings"
	"testing"

	"github.com/prometheus/client_golang/prometheus"
)

// FuzzStreamEqualsMaskText: for any text and any cut points, the streamed
// output equals MaskText of the whole text.
func FuzzStreamEqualsMaskText(f *testing.F) {
	for _, c := range leakCorpus {
		f.Add(c.text, uint64(0x9e3779b97f4a7c15))
	}
	f.Add("GB82 WEST 1234 5698 7654 32 ", uint64(7))
	f.Add(strings.Repeat("1 ", 200)+"4111 1111 1111 1111", uint64(3))
	f.Add("a\u200b\u200b\u200b4111\u00a01111", uint64(11))
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		want := m.MaskText(text, "", nil)
		ts := m.NewTextStream("", nil)
		var out []byte
		for i := 0; i < len(text); {
			seed = seed*6364136223846793005 + 1442695040888963407
			n := 1 + int(seed>>59)
			j := min(len(text), i+n)
			out = ts.Write(out, text[i:j])
			i = j
		}
		out = ts.Flush(out)
		if string(out) != want {
			t.Fatalf("stream %q\n  != %q", out, want)
		}
	})
}

func TestMetrics(t *testing.T) {
	m := defaultMasker(t)
	rec := NewRecorder()
	m.MaskText("4111 1111 1111 1111 and 4111-1111-1111-1111, a@b.io", "x", rec)
	rec.fail("test")
	x := NewMetrics()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(x)
	x.Observe("default", rec)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, mt := range mf.GetMetric() {
			key := mf.GetName()
			for _, l := range mt.GetLabel() {
				key += "," + l.GetValue()
			}
			got[key] = mt.GetCounter().GetValue()
		}
	}
	if got["warden_mask_values_total,CREDIT_CARD,default,entities.CREDIT_CARD"] != 2 ||
		got["warden_mask_values_total,EMAIL_ADDRESS,default,entities.EMAIL_ADDRESS"] != 1 ||
		got["warden_mask_refused_total,default"] != 1 {
		t.Fatalf("metrics %v", got)
	}
}

// FuzzSSE: arbitrary upstream bytes never panic the SSE masker, and nothing
// follows a fail-closed error event.
func FuzzSSE(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"4111 1111\"}}]}\r\n\r\ndata: [DONE]\n\n"), true)
	f.Add([]byte("event: response.output_text.delta\ndata: {\"type\":\"response.output_text.delta\",\"delta\":\"a@b\"}\n\n"), true)
	f.Add([]byte(": c\ndata: x\ndata: y\rid: 1\n\n"), false)
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, in []byte, openai bool) {
		kind := StreamGeneric
		if openai {
			kind = StreamOpenAI
		}
		s := newSSEMasker(m, nil, kind)
		s.feed(in)
		s.finish()
		if i := strings.Index(string(s.out), "event: error\n"); i >= 0 && !strings.HasSuffix(string(s.out), "}}\n\n") {
			t.Fatalf("output after error event: %q", s.out[i:])
		}
	})
}

// FuzzMaskJSON: valid JSON stays valid JSON.
func FuzzMaskJSON(f *testing.F) {
	f.Add([]byte(`{"a":"4111 1111 1111 1111","b":[1,2.5e3,{"c":"\u0034x@y.io"}]}`))
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, in []byte) {
		out, err := m.MaskJSON(in, nil)
		if err == nil && jsontextValid(in) && !jsontextValid(out) {
			t.Fatalf("MaskJSON(%q) = %q, invalid", in, out)
		}
	})
}

// FuzzHTMLStreamEqualsMaskHTML: text/html is masked as a stream with
// character references decoded; for any text and any cut points the
// streamed output equals MaskHTML of the whole text.
func FuzzHTMLStreamEqualsMaskHTML(f *testing.F) {
	f.Add("<p>card &#52;111&nbsp;1111&nbsp1111 1111 &amp; mail jane&commat;example.com</p>", uint64(5))
	f.Add("&#x34;&#49;&#0000049;1 1111 1111 1111 &", uint64(1))
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, text string, seed uint64) {
		want := m.MaskHTML(text, "", nil)
		ts := m.newHTMLStream("", nil)
		var out []byte
		for i := 0; i < len(text); {
			seed = seed*6364136223846793005 + 1442695040888963407
			j := min(len(text), i+1+int(seed>>60))
			out = ts.Write(out, text[i:j])
			i = j
		}
		if out = ts.Flush(out); string(out) != want {
			t.Fatalf("stream %q\n  != %q", out, want)
		}
	})
}

// FuzzSSEAbort: when a stream ends abnormally at any point, the masker adds
// nothing to what it had already emitted but the error event: held-back
// text is never flushed.
func FuzzSSEAbort(f *testing.F) {
	f.Add([]byte("data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 1111 1111\"}}]}\n\ndata: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\" 1111 ok\"}}]}\n\n"), uint16(60), true)
	f.Add([]byte("data: mail jane.doe@exa\n\ndata: mple.com\n\n"), uint16(30), false)
	m := defaultMasker(f)
	f.Fuzz(func(t *testing.T, in []byte, cut uint16, openai bool) {
		kind := StreamGeneric
		if openai {
			kind = StreamOpenAI
		}
		in = in[:min(len(in), int(cut))]
		s := newSSEMasker(m, nil, kind)
		s.feed(in)
		before := string(s.out)
		if s.failed {
			return
		}
		s.abort("test")
		after := string(s.out)
		if s.ended && s.pendingText() == 0 && after == before {
			return // the answer was complete
		}
		rest, ok := strings.CutPrefix(after, before)
		if !ok || !strings.HasPrefix(rest, "event: error\ndata: {\"error\":") || strings.Count(rest, "\n\n") != 1 || !strings.HasSuffix(rest, "}}\n\n") {
			t.Fatalf("abort added more than an error event: %q", rest)
		}
	})
}
