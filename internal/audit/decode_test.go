package audit_test

import (
	"reflect"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/audit"
)

// TestDecodeEntry: DecodeEntry gives ParseEntry's entry for canonical
// bytes, accepts non-canonical ones (it is for authenticated bytes) and
// still refuses unknown fields, trailing data and other versions.
func TestDecodeEntry(t *testing.T) {
	e := request(3)
	e.V, e.ID, e.Time = audit.SchemaVersion, "id-3", time.Date(2026, 11, 2, 9, 0, 0, 5, time.UTC)
	e.Masking = []audit.MaskAction{{Rule: "pii", Entity: "EMAIL", Count: 2}}
	b, err := audit.Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	strict, err := audit.ParseEntry(7, b)
	if err != nil {
		t.Fatal(err)
	}
	got, err := audit.DecodeEntry(7, b)
	if err != nil || !reflect.DeepEqual(got, strict) {
		t.Fatalf("DecodeEntry = %+v, %v; ParseEntry = %+v", got, err, strict)
	}
	if _, err := audit.DecodeEntry(7, append([]byte(" "), b...)); err != nil {
		t.Errorf("non-canonical bytes refused: %v", err)
	}
	for _, bad := range []string{
		`{"v":1,"kind":"x","id":"a","time":"2026-01-01T00:00:00Z","extra":1}`,
		`{"v":2,"kind":"x","id":"a","time":"2026-01-01T00:00:00Z"}`,
		`{"v":1,"kind":"x","id":"a","time":"2026-01-01T00:00:00Z"} {}`,
	} {
		if _, err := audit.DecodeEntry(1, []byte(bad)); err == nil {
			t.Errorf("accepted %s", bad)
		}
	}
}
