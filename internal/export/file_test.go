package export

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestFileSinkCutsTornLine: a file left with a partial last line (a crash
// mid-write) is cut back to its last whole line before the next batch.
func TestFileSinkCutsTornLine(t *testing.T) {
	for _, tc := range []struct{ before, want string }{
		{"", "{\"n\":1}\n"},
		{"{\"a\":1}\n", "{\"a\":1}\n{\"n\":1}\n"},
		{"{\"a\":1}\n{\"b\":", "{\"a\":1}\n{\"n\":1}\n"},
		{"{\"b\":", "{\"n\":1}\n"},
		{"{\"a\":1}\n" + strings.Repeat("x", 70<<10), "{\"a\":1}\n{\"n\":1}\n"},
	} {
		path := filepath.Join(t.TempDir(), "ocsf.jsonl")
		if err := os.WriteFile(path, []byte(tc.before), 0o600); err != nil {
			t.Fatal(err)
		}
		s, err := NewFileSink(FileConfig{Path: path}, nil)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Send(context.Background(), []Event{{UID: "x", JSON: []byte(`{"n":1}`)}}); err != nil {
			t.Fatal(err)
		}
		s.Close()
		got, _ := os.ReadFile(path)
		if string(got) != tc.want {
			t.Errorf("before %.20q: file %q, want %q", tc.before, got, tc.want)
		}
	}
}
