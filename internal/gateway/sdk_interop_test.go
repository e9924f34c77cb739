package gateway

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/mask"
)

// TestOpenAINodeSDKSeesStreamErrors streams through Warden with the
// official openai Node SDK while the upstream breaks off mid-answer (and
// while the masker refuses an event): the SDK must raise an APIError with
// Warden's message, must not have yielded any PII prefix, and the
// completion must record the outcome.
func TestOpenAINodeSDKSeesStreamErrors(t *testing.T) {
	dir, err := filepath.Abs(filepath.Join("testdata", "openai-sdk"))
	if err != nil {
		t.Fatal(err)
	}
	// CI installs the SDK and sets WARDEN_TEST_REQUIRE_OPENAI_SDK: there a
	// missing install is a failure, not a skip.
	skip := t.Skip
	if os.Getenv("WARDEN_TEST_REQUIRE_OPENAI_SDK") != "" {
		skip = t.Fatal
	}
	if _, err := os.Stat(filepath.Join(dir, "node_modules", "openai")); err != nil {
		skip("openai SDK not installed; run `npm ci --prefix internal/gateway/testdata/openai-sdk` to enable this interop test")
	}
	node, err := exec.LookPath("node")
	if err != nil {
		skip("node not found in PATH; install Node.js 20 to run the openai SDK interop test")
	}

	plain := chatStream("card 4111 1111 1111 1111, mail jane.doe@example.com.")
	tool := toolStream(`{"card":"5500 0055 5555 5559"}`)
	refused := `data: {"choices":[{"index":0,"delta":{"content":"card 4111 1111"}}]}` + "\n\n" +
		`data: {"choices":[{"index":0,"delta":{"content":"` + strings.Repeat("x", 4096) + `"}}]}` + "\n\n"
	streams := map[string]string{"plain": plain, "tool": tool, "refused": refused}
	up := killingUpstream(t, streams, "text/event-stream")
	log := &memAudit{}
	_, gw := maskingGateway(t, up.URL, log, mask.Profile{MaxEventBytes: 2048})
	for _, tt := range []struct {
		name, query, errType, outcome string
	}{
		{"cut in a card", "stream=plain&cut=" + strconv.Itoa(strings.Index(plain, "1111 1111")+4), "upstream_error", audit.OutcomeTruncated},
		{"cut in an address", "stream=plain&cut=" + strconv.Itoa(strings.Index(plain, "@")), "upstream_error", audit.OutcomeTruncated},
		{"cut in tool arguments", "stream=tool&cut=" + strconv.Itoa(len(tool)/2) + "&cl=1", "upstream_error", audit.OutcomeTruncated},
		{"refused by masking", "stream=refused&cut=" + strconv.Itoa(len(refused)) + "&cl=1", "masking_failed", audit.OutcomeMaskingFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			out, err := exec.Command(node, filepath.Join(dir, "stream.mjs"), gw+"/v1", tt.query).CombinedOutput()
			if err != nil {
				t.Fatalf("node: %v\n%s", err, out)
			}
			var res struct {
				Text  string `json:"text"`
				Error *struct {
					IsAPIError bool   `json:"isAPIError"`
					Message    string `json:"message"`
					Type       string `json:"type"`
					RequestID  string `json:"requestID"`
				} `json:"error"`
			}
			if err := json.Unmarshal(out, &res); err != nil {
				t.Fatalf("node output %q: %v", out, err)
			}
			if res.Error == nil || !res.Error.IsAPIError || res.Error.Type != tt.errType || !strings.Contains(res.Error.Message, "warden: ") {
				t.Fatalf("the SDK did not raise Warden's error: %s", out)
			}
			if v := leakedPrefix(res.Text); v != "" {
				t.Fatalf("the SDK yielded a prefix of %q: %q", v, res.Text)
			}
			if e := log.completed(res.Error.RequestID); e == nil || e.Outcome != tt.outcome {
				t.Fatalf("completion %+v, want %s (SDK: %s)", e, tt.outcome, out)
			}
			t.Logf("SDK: %s", out)
		})
	}
}
