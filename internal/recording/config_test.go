package recording_test

import (
	"context"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

func TestConfigDefaultsAndValidate(t *testing.T) {
	var c recording.Config
	c.SetDefaults()
	c.Resolve("/data")
	if err := c.Validate(); err != nil {
		t.Fatalf("defaults do not validate: %v", err)
	}
	if c.Mode != recording.Strict || c.Default != recording.LevelOff || c.Store != "filesystem" ||
		c.Path != "/data/recordings/objects" || c.KeyFile != "/data/keys/recordings.kek" || c.CatalogPath != "/data/recordings/catalog.db" {
		t.Errorf("defaults %+v", c)
	}
	bad := c
	bad.Mode, bad.Default, bad.Store, bad.Retention, bad.SpillThreshold = "lenient", "all", "tape", -1, 10
	err := bad.Validate()
	for _, key := range []string{"mode", "default", "store", "retention", "spill_threshold"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("invalid %s not reported: %v", key, err)
		}
	}
	s3 := c
	s3.Store = "s3"
	s3.S3 = recording.S3Config{Endpoint: "ftp://x", Prefix: "no-slash"}
	err = s3.Validate()
	for _, key := range []string{"s3.endpoint", "s3.bucket", "s3.prefix"} {
		if err == nil || !strings.Contains(err.Error(), key+":") {
			t.Errorf("invalid %s not reported: %v", key, err)
		}
	}
}

// TestOpenFromConfig: the embedded default opens from a data dir alone
// and records.
func TestOpenFromConfig(t *testing.T) {
	dir := t.TempDir()
	var c recording.Config
	c.SetDefaults()
	c.Resolve(dir)
	cat, err := sqlite.OpenRecordingCatalog(context.Background(), c.CatalogPath)
	if err != nil {
		t.Fatal(err)
	}
	defer cat.Close()
	rec, err := recording.Open(context.Background(), c, cat, recording.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer rec.Close()
	cp, err := rec.Reserve(recording.Info{RequestID: "r", Level: recording.LevelFull})
	if err != nil {
		t.Fatal(err)
	}
	cp.Write([]byte("hello"))
	if res := cp.Finish(context.Background()); res.Outcome != recording.OutcomeStored {
		t.Fatal(res.Err)
	}
	if m, _ := filepath.Glob(filepath.Join(dir, "keys", "recordings.kek")); len(m) != 1 {
		t.Error("no KEK file created under the data dir")
	}
}
