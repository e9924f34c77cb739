package mask

import (
	"encoding/json"
	"io"
	"net/http"
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestDocsEvidenceExample: the masking action docs/masking.md shows is
// what the masker records for that case — a card in a chat delta under
// the default profile — in rule name, entity, location and fingerprint
// shape, so the documentation cannot drift from the evidence again (it
// once said "rule":"default", the profile, where entries carry
// entities.CREDIT_CARD).
func TestDocsEvidenceExample(t *testing.T) {
	b, err := os.ReadFile("../../docs/masking.md")
	if err != nil {
		t.Fatal(err)
	}
	line := regexp.MustCompile(`(?m)^\{"rule":.*\}$`).Find(b)
	if line == nil {
		t.Fatal("docs/masking.md has no evidence example line")
	}
	var doc Action
	if err := json.Unmarshal(line, &doc); err != nil {
		t.Fatalf("docs example %s: %v", line, err)
	}

	set, err := New(Config{}, []byte("docs-example-key"))
	if err != nil {
		t.Fatal(err)
	}
	m, _ := set.Profile("default")
	rec := NewRecorder()
	body := "data: {\"choices\":[{\"index\":0,\"delta\":{\"content\":\"card 4111 1111 1111 1111 ok\"}}]}\n\ndata: [DONE]\n\n"
	resp := &http.Response{StatusCode: 200, Header: http.Header{"Content-Type": {"text/event-stream"}}, Body: io.NopCloser(strings.NewReader(body))}
	if err := m.WrapResponse(resp, rec, StreamOpenAI); err != nil {
		t.Fatal(err)
	}
	if _, err := io.ReadAll(resp.Body); err != nil {
		t.Fatal(err)
	}
	acts := rec.Actions()
	if len(acts) != 1 {
		t.Fatalf("actions %+v", acts)
	}
	got := acts[0]
	if doc.Rule != got.Rule || doc.Entity != got.Entity || doc.Location != got.Location || doc.Count != got.Count {
		t.Fatalf("docs/masking.md shows %s; the masker records rule %q entity %q location %q count %d", line, got.Rule, got.Entity, got.Location, got.Count)
	}
	if !regexp.MustCompile(`^[0-9a-f]+$`).MatchString(doc.Fingerprint) || len(doc.Fingerprint) != len(got.Fingerprint) {
		t.Fatalf("docs fingerprint %q does not look like %q", doc.Fingerprint, got.Fingerprint)
	}
}
