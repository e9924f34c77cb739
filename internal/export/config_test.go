package export

import (
	"errors"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/goccy/go-yaml"

	"github.com/wardenhq/warden/internal/config/field"
)

// docExample returns the YAML example of docs/export.md's Configuration
// section.
func docExample(t *testing.T) []byte {
	t.Helper()
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "export.md"))
	if err != nil {
		t.Fatal(err)
	}
	m := regexp.MustCompile("(?s)## Configuration.*?```yaml\n(.*?)```").FindSubmatch(b)
	if m == nil {
		t.Fatal("docs/export.md has no yaml example under ## Configuration")
	}
	return m[1]
}

func decodeExport(t *testing.T, b []byte) Config {
	t.Helper()
	var doc struct {
		Export Config `yaml:"export"`
	}
	if err := yaml.UnmarshalWithOptions(b, &doc, yaml.DisallowUnknownField()); err != nil {
		t.Fatalf("decode: %v", err)
	}
	return doc.Export
}

// TestDocExampleValid: the documented example decodes strictly and
// validates, with every sink type in it.
func TestDocExampleValid(t *testing.T) {
	c := decodeExport(t, docExample(t))
	c.SetDefaults()
	c.Resolve(t.TempDir())
	if err := c.Validate(); err != nil {
		t.Fatalf("docs/export.md example does not validate: %v", err)
	}
	types := map[string]bool{}
	for _, s := range c.Sinks {
		types[s.Type] = true
	}
	for _, want := range []string{"file", "syslog", "splunk_hec", "nats", "kafka", "webhook"} {
		if !types[want] {
			t.Errorf("the example has no %s sink", want)
		}
	}
}

// TestDocMappingTable: docs/export.md has a row for every mapped kind.
func TestDocMappingTable(t *testing.T) {
	b, err := os.ReadFile(filepath.Join("..", "..", "docs", "export.md"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range append(MappedKinds(), KindCheckpoint) {
		if !strings.Contains(string(b), "| `"+k+"`") {
			t.Errorf("docs/export.md has no mapping row for %s", k)
		}
	}
}

func TestConfigErrorsNameTheKey(t *testing.T) {
	c := decodeExport(t, []byte(`
export:
  sinks:
    - name: a
      type: syslog
      syslog: {address: "nohost", transport: udp}
    - name: a
      type: file
    - name: "bad name"
      type: kafka
      kafka: {brokers: ["k:1"], topic: t}
      nats: {url: "nats://x"}
    - name: hec
      type: splunk_hec
      filter: "entry.kind"
      catchup_factor: 0.5
      splunk_hec: {url: "ftp://x"}
    - name: w
      type: pigeon
`))
	c.SetDefaults()
	err := c.Validate()
	var paths []string
	var walk func(error)
	walk = func(err error) {
		if j, ok := err.(interface{ Unwrap() []error }); ok {
			for _, e := range j.Unwrap() {
				walk(e)
			}
			return
		}
		var fe *field.Error
		if errors.As(err, &fe) {
			paths = append(paths, fe.Path)
		}
	}
	walk(err)
	got := strings.Join(paths, " ")
	for _, want := range []string{"sinks[0].syslog.address", "sinks[0].syslog.transport", "sinks[1].name", "sinks[1].file",
		"sinks[2].name", "sinks[2].nats", "sinks[3].filter", "sinks[3].splunk_hec.url", "sinks[3].splunk_hec.token", "sinks[3].catchup_factor", "sinks[4].type"} {
		if !strings.Contains(got, want) {
			t.Errorf("no error for %s (got %s)", want, got)
		}
	}
}

func TestConfigTargets(t *testing.T) {
	dir := t.TempDir()
	c := decodeExport(t, []byte(`
export:
  sinks:
    - name: archive
      type: file
      filter: 'entry.kind == "request.denied"'
      drop_params: true
      catchup_min_rate: -1
      catchup_factor: 3
      cursor_interval: -1s
      file: {path: `+filepath.Join(dir, "x.jsonl")+`}
    - name: hook
      type: webhook
      webhook: {url: "https://soar.example/h", secret: s}
`))
	c.SetDefaults()
	c.Resolve(dir)
	if err := c.Validate(); err != nil {
		t.Fatal(err)
	}
	ts, err := c.Targets("warden-audit", nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(ts) != 2 || ts[0].Filter == nil || !ts[0].DropParams || ts[1].Filter != nil ||
		ts[0].DeadLetter != filepath.Join(dir, "export", "archive.deadletter.jsonl") ||
		ts[0].CatchupMinRate != -1 || ts[0].CatchupFactor != 3 || ts[1].CatchupMinRate != 0 ||
		ts[0].CursorInterval != -time.Second || ts[1].CursorInterval != 0 {
		t.Fatalf("targets %+v", ts)
	}
	if _, ok := ts[0].Sink.(*FileSink); !ok {
		t.Fatalf("sink %T", ts[0].Sink)
	}
	for _, tg := range ts {
		tg.Sink.Close()
	}
}
