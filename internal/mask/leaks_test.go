package mask

// One test per leak class of issue 12 (values that survived masking, and
// answers that passed unmasked). Each failed on the masker before the fix;
// they use only the API that existed then, so they can be run against it.

import (
	"bytes"
	"errors"
	"io"
	"net/http"
	"strings"
	"testing"

	"golang.org/x/text/encoding/htmlindex"
)

// completeLuhn appends the Luhn check digit to the digits of partial.
func completeLuhn(partial string) string {
	sum := 0
	for i := len(partial) - 1; i >= 0; i-- {
		d := int(partial[i] - '0')
		if (len(partial)-i)%2 == 1 {
			d *= 2
			if d > 9 {
				d -= 9
			}
		}
		sum += d
	}
	return partial + string(rune('0'+(10-sum%10)%10))
}

// group writes digits in groups of the given sizes joined by sep.
func group(digits, sep string, sizes ...int) string {
	var parts []string
	for _, n := range sizes {
		parts = append(parts, digits[:n])
		digits = digits[n:]
	}
	if digits != "" {
		parts = append(parts, digits)
	}
	return strings.Join(parts, sep)
}

type maskCase struct{ name, in, want string }

func runMaskCases(t *testing.T, m *Masker, cases []maskCase) {
	t.Helper()
	for _, tt := range cases {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.MaskText(tt.in, "t", nil); got != tt.want {
				t.Errorf("MaskText(%q)\n got %q\nwant %q", tt.in, got, tt.want)
			}
		})
	}
}

// TestLeak19DigitCards: every valid length (13-19) of every network was
// missed beyond 16 digits.
func TestLeak19DigitCards(t *testing.T) {
	visa19 := completeLuhn("400000000000000000")
	disc19 := completeLuhn("601100000000000004")
	union19 := completeLuhn("621234567890123456")
	maestro13 := completeLuhn("501800000000")
	jcb17 := completeLuhn("3530111333300000")
	diners14 := completeLuhn("3622720627166")
	const cc = "[REDACTED:CREDIT_CARD]"
	runMaskCases(t, defaultMasker(t), []maskCase{
		{"visa 19 plain", "card " + visa19 + " ok", "card " + cc + " ok"},
		{"visa 19 spaces", "card " + group(visa19, " ", 4, 4, 4, 4) + ".", "card " + cc + "."},
		{"visa 19 dashes", group(visa19, "-", 4, 4, 4, 4), cc},
		{"discover 19 dots", group(disc19, ".", 4, 4, 4, 4), cc},
		{"unionpay 19 6-13", "pay " + group(union19, " ", 6) + " now", "pay " + cc + " now"},
		{"maestro 13", group(maestro13, " ", 4, 4, 4), cc},
		{"jcb 17", group(jcb17, " ", 4, 4, 4, 4), cc},
		{"diners 14 4-6-4", group(diners14, " ", 4, 6), cc},
		{"visa 19 full-width", "４０００ ００００ ００００ ００００ " + toFullWidth(visa19[16:]), cc},
	})
}

func toFullWidth(s string) string {
	var b strings.Builder
	for _, r := range s {
		if r >= '0' && r <= '9' {
			r += 0xFF10 - '0'
		}
		b.WriteRune(r)
	}
	return b.String()
}

// TestLeakSSNFormats: spaced SSNs and labelled bare 9-digit SSNs survived.
func TestLeakSSNFormats(t *testing.T) {
	const ssn = "[REDACTED:US_SSN]"
	m := defaultMasker(t)
	runMaskCases(t, m, []maskCase{
		{"spaces", "her number is 123 45 6789.", "her number is " + ssn + "."},
		{"ssn=", "ssn=123456789&x=1", "ssn=" + ssn + "&x=1"},
		{"SSN:", "SSN: 123456789", "SSN: " + ssn},
		{"social security number", "Social Security Number 123456789 on file", "Social Security Number " + ssn + " on file"},
		{"ssn is", "his SSN is 123456789.", "his SSN is " + ssn + "."},
		{"markdown cell", "| SSN | 123456789 |", "| SSN | " + ssn + " |"},
		{"yaml", "ssn: '123456789'", "ssn: '" + ssn + "'"},
		// Not SSNs: unlabelled 9 digits, never-issued numbers.
		{"bare unlabelled", "order 123456789 shipped", "order 123456789 shipped"},
		{"area 000", "SSN: 000-12-3456", "SSN: 000-12-3456"},
		{"area 666", "ssn 666 12 3456", "ssn 666 12 3456"},
		{"area 9xx", "SSN: 912345678", "SSN: 912345678"},
		{"group 00", "SSN: 123-00-4567", "SSN: 123-00-4567"},
		{"advertised", "SSN: 078-05-1120", "SSN: 078-05-1120"},
	})
	for _, tt := range []struct{ in, want string }{
		{`{"ssn":"123456789"}`, `{"ssn":"` + ssn + `"}`},
		{`{"social_security_number":123456789}`, `{"social_security_number":"` + ssn + `"}`},
		{`{"order":"123456789"}`, `{"order":"123456789"}`},
	} {
		out, err := m.MaskJSON([]byte(tt.in), nil)
		if err != nil || string(out) != tt.want {
			t.Errorf("MaskJSON(%s) = %s, %v; want %s", tt.in, out, err, tt.want)
		}
	}
}

// TestLeakLowerCaseIBAN: lower-case IBANs survived.
func TestLeakLowerCaseIBAN(t *testing.T) {
	const iban = "[REDACTED:IBAN_CODE]"
	runMaskCases(t, defaultMasker(t), []maskCase{
		{"print", "iban de89 3704 0044 0532 0130 00 please", "iban " + iban + " please"},
		{"electronic", "de89370400440532013000", iban},
		{"letters in the BBAN", "gb82 west 1234 5698 7654 32", iban},
		{"mixed case", "send to Gb82West12345698765432.", "send to " + iban + "."},
		{"bad checksum", "de89 3704 0044 0532 0130 01", "de89 3704 0044 0532 0130 01"},
	})
}

// TestLeakWrappedCard: a card whose digit groups wrap across a line break.
func TestLeakWrappedCard(t *testing.T) {
	const cc = "[REDACTED:CREDIT_CARD]"
	runMaskCases(t, defaultMasker(t), []maskCase{
		{"lf", "card 4111 1111\n1111 1111 ok", "card " + cc + " ok"},
		{"crlf", "card 4111 1111 1111\r\n1111", "card " + cc},
		{"indented", "4111 1111 1111\n  1111", cc},
		{"two lines of numbers stay", "1234\n5678", "1234\n5678"},
	})
	// Streamed, split at every byte (a CR at the end of a chunk may be the
	// first half of CRLF).
	m := defaultMasker(t)
	for _, in := range []string{"card 4111 1111 1111\r\n1111 ok", "4111 1111\r\r\n1111 1111", "a 4111 1111 \r\n  1111 1111\n"} {
		want := m.MaskText(in, "", nil)
		for k := 1; k < len(in); k++ {
			ts := m.NewTextStream("", nil)
			if got := string(ts.Flush(ts.Write(ts.Write(nil, in[:k]), in[k:]))); got != want {
				t.Errorf("%q split at %d: %q, want %q", in, k, got, want)
			}
		}
	}
}

// TestFalsePositivePackageSpecs: name@version is not an email address.
func TestFalsePositivePackageSpecs(t *testing.T) {
	runMaskCases(t, defaultMasker(t), []maskCase{
		{"npm", "npm i openai@7.57.0", "npm i openai@7.57.0"},
		{"scoped", "@scope/pkg@2.0.1", "@scope/pkg@2.0.1"},
		{"go", "golang.org/x/text@v0.44.0", "golang.org/x/text@v0.44.0"},
		{"still an address", "mail ops@example.io", "mail [REDACTED:EMAIL_ADDRESS]"},
	})
}

// wrapBody runs body through WrapResponse with the given headers and
// returns the masked body, or the error.
func wrapBody(t *testing.T, m *Masker, kind StreamKind, hdr http.Header, body []byte) ([]byte, error) {
	t.Helper()
	resp := &http.Response{StatusCode: 200, Header: hdr, Body: io.NopCloser(bytes.NewReader(body))}
	if err := m.WrapResponse(resp, NewRecorder(), kind); err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	return io.ReadAll(resp.Body)
}

func encodeIn(t *testing.T, charset, s string) []byte {
	t.Helper()
	e, err := htmlindex.Get(charset)
	if err != nil {
		t.Fatal(err)
	}
	b, err := e.NewEncoder().Bytes([]byte(s))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func decodeFrom(t *testing.T, charset string, b []byte) string {
	t.Helper()
	e, err := htmlindex.Get(charset)
	if err != nil {
		t.Fatal(err)
	}
	s, err := e.NewDecoder().Bytes(b)
	if err != nil {
		t.Fatal(err)
	}
	return string(s)
}

// TestLeakCharsets: an answer in a declared non-UTF-8 charset passed
// unmasked; it is decoded, masked and encoded back, and a charset that
// cannot be decoded is refused.
func TestLeakCharsets(t *testing.T) {
	m := defaultMasker(t)
	for _, tt := range []struct {
		name, ct, charset, in, want string
	}{
		{"utf-16le text", "text/plain; charset=utf-16le", "utf-16le", "card 4111 1111 1111 1111 für dich", "card [REDACTED:CREDIT_CARD] für dich"},
		{"utf-16be text", "text/plain; charset=UTF-16BE", "utf-16be", "mail jane@example.com", "mail [REDACTED:EMAIL_ADDRESS]"},
		{"shift_jis full-width digits", "text/plain; charset=Shift_JIS", "shift_jis", "カード ４１１１ １１１１ １１１１ １１１１ です", "カード [REDACTED:CREDIT_CARD] です"},
		{"latin1", "text/plain; charset=iso-8859-1", "windows-1252", "café 4111-1111-1111-1111 ß", "café [REDACTED:CREDIT_CARD] ß"},
		{"utf-16le json", "application/json; charset=utf-16le", "utf-16le", `{"content":"card 4111 1111 1111 1111"}`, `{"content":"card [REDACTED:CREDIT_CARD]"}`},
		{"utf-16le sse", "text/event-stream; charset=utf-16le", "utf-16le",
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"4111 1111 1111 1111!\"}}]}\n\ndata: [DONE]\n\n",
			"data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"[REDACTED:CREDIT_CARD]!\"}}]}\n\ndata: [DONE]\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := wrapBody(t, m, StreamOpenAI, http.Header{"Content-Type": {tt.ct}}, encodeIn(t, tt.charset, tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if got := decodeFrom(t, tt.charset, out); got != tt.want {
				t.Fatalf("got %q\nwant %q", got, tt.want)
			}
		})
	}
	for _, ct := range []string{"text/plain; charset=utf-7", "text/html; charset=UTF-7", "text/plain; charset=x-no-such-charset", "application/json; charset=ebcdic", "text/plain; charset=iso-2022-kr"} {
		t.Run("refused "+ct, func(t *testing.T) {
			out, err := wrapBody(t, m, StreamGeneric, http.Header{"Content-Type": {ct}}, []byte("+ADQ-111 1111 1111 1111"))
			if !errors.Is(err, ErrBlocked) {
				t.Fatalf("not refused: %q, %v", out, err)
			}
		})
	}
	// NUL bytes render as nothing: UTF-16 text sent without its charset
	// still has its ASCII values found.
	out, err := wrapBody(t, m, StreamGeneric, http.Header{"Content-Type": {"text/plain"}}, encodeIn(t, "utf-16le", "card 4111 1111 1111 1111"))
	if err != nil || bytes.Contains(bytes.ReplaceAll(out, []byte{0}, nil), []byte("4111")) {
		t.Fatalf("undeclared utf-16: %q %v", out, err)
	}
}

// TestLeakNonJSONPayloads: SSE data that is not JSON, JSON bodies holding
// several values or a bare number, and conflicting Content-Type headers.
func TestLeakNonJSONPayloads(t *testing.T) {
	m := defaultMasker(t)
	sse := http.Header{"Content-Type": {"text/event-stream"}}
	for _, tt := range []struct {
		name string
		kind StreamKind
		in   string
	}{
		{"plain text data", StreamOpenAI, "data: your card is 4111 1111 1111 1111\n\ndata: [DONE]\n\n"},
		{"numbers as data", StreamOpenAI, "data: 4111 1111 1111 1111\n\ndata: [DONE]\n\n"},
		{"bare number data", StreamOpenAI, "data: 4111111111111111\n\ndata: [DONE]\n\n"},
		{"two JSON values", StreamOpenAI, "data: {\"a\":1} \"4111 1111 1111 1111\"\n\ndata: [DONE]\n\n"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := wrapBody(t, m, tt.kind, sse, []byte(tt.in))
			if err != nil {
				t.Fatal(err)
			}
			if bytes.Contains(out, []byte("4111")) {
				t.Fatalf("passed unmasked: %q", out)
			}
		})
	}
	for _, body := range []string{"4111 1111 1111 1111", `{"a":1} {"b":"4111 1111 1111 1111"}`, `"x" 4111 1111 1111 1111`} {
		out, err := wrapBody(t, m, StreamOpenAI, http.Header{"Content-Type": {"application/json"}}, []byte(body))
		if err == nil && bytes.Contains(out, []byte("4111")) {
			t.Errorf("JSON body %q passed: %q", body, out)
		}
	}
	out, err := wrapBody(t, m, StreamOpenAI, http.Header{"Content-Type": {"application/json"}}, []byte("4111111111111111"))
	if err != nil || bytes.Contains(out, []byte("4111")) {
		t.Errorf("bare number body: %q %v", out, err)
	}
	conflicting := http.Header{"Content-Type": {"application/json", "text/plain"}}
	if out, err := wrapBody(t, m, StreamOpenAI, conflicting, []byte(`{"a":"4111 1111 1111 1111"}`)); !errors.Is(err, ErrBlocked) {
		t.Errorf("conflicting Content-Type headers passed: %q %v", out, err)
	}
	same := http.Header{"Content-Type": {"application/json", "application/json"}}
	if out, err := wrapBody(t, m, StreamOpenAI, same, []byte(`{"a":"4111 1111 1111 1111"}`)); err != nil || bytes.Contains(out, []byte("4111")) {
		t.Errorf("repeated identical Content-Type: %q %v", out, err)
	}
}

// TestLeakHTMLCharacterReferences: in text/html, character references are
// decoded for detection (&#52; is a '4'); UTF-7 is refused.
func TestLeakHTMLCharacterReferences(t *testing.T) {
	m := defaultMasker(t)
	html := http.Header{"Content-Type": {"text/html; charset=utf-8"}}
	for _, in := range []string{
		"<p>card &#52;&#49;&#49;&#49; &#x31;111 1111 1111</p>",
		"<p>card &#52;111&nbsp;1111&nbsp;1111&nbsp;1111</p>",
		"<p>card 4111&nbsp1111&nbsp1111&nbsp1111</p>",
		"<p>card &#00000052;111-1111-1111-1111</p>",
		"<p>mail jane&#64;example.com</p>",
		"<p>mail jane&commat;example&period;com</p>",
		"<p>iban DE89&#32;3704&#32;0044&#32;0532&#32;0130&#32;00</p>",
	} {
		out, err := wrapBody(t, m, StreamGeneric, html, []byte(in))
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Contains(out, []byte("[REDACTED:")) || bytes.Contains(out, []byte("1111")) || bytes.Contains(out, []byte("jane")) || bytes.Contains(out, []byte("3704")) {
			t.Errorf("%q -> %q", in, out)
		}
	}
	// Text that is not a reference is left alone.
	in := "<p>AT&amp;T &c. R&D 4111 &#; &#xZZ;</p>"
	if out, err := wrapBody(t, m, StreamGeneric, html, []byte(in)); err != nil || string(out) != in {
		t.Errorf("%q -> %q %v", in, out, err)
	}
}
