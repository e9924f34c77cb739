package policy

import (
	"strings"
	"testing"
)

// TestRecordKeys: a rule's record level and record_request reach the
// decision; an unknown value is refused at load with the rule's key; a
// rule without record leaves the level to the config default ("").
func TestRecordKeys(t *testing.T) {
	p, err := Load("p.yaml", []byte(`version: 1
rules:
  - {name: full-raw, when: 'request.path == "/a"', action: allow, record: full, record_request: raw}
  - {name: meta, when: 'request.path == "/b"', action: allow, record: metadata}
  - {name: default, when: 'true', action: allow}
`))
	if err != nil {
		t.Fatal(err)
	}
	for path, want := range map[string]struct {
		level RecordLevel
		raw   bool
	}{"/a": {RecordFull, true}, "/b": {RecordMetadata, false}, "/c": {"", false}} {
		d := p.Decide(&Input{Request: Request{Method: "GET", Path: path}})
		if d.Record != want.level || d.RecordRaw != want.raw {
			t.Errorf("%s: record %q raw %v, want %+v", path, d.Record, d.RecordRaw, want)
		}
	}
	for _, bad := range []string{"record: always", "record_request: plain", "record: FULL"} {
		_, err := Load("p.yaml", []byte("version: 1\nrules:\n  - name: r\n    when: 'true'\n    action: allow\n    "+bad+"\n"))
		key, _, _ := strings.Cut(bad, ":")
		if err == nil || !strings.Contains(err.Error(), key) {
			t.Errorf("%q: %v", bad, err)
		}
	}
	// The recording level is part of what the policy version hashes.
	a, _ := Load("p.yaml", []byte("version: 1\nrules:\n  - {name: r, when: 'true', action: allow}\n"))
	b, _ := Load("p.yaml", []byte("version: 1\nrules:\n  - {name: r, when: 'true', action: allow, record: full}\n"))
	if a.Version() == b.Version() {
		t.Error("record is not part of the policy version")
	}
}
