package recording_test

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recording/recordingtest"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// testCtx is a context bounded by the test.
func testCtx(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// env is a recorder with its stores, as the gateway would wire it.
type env struct {
	dir   string
	blobs recording.BlobStore
	cat   *sqlite.RecordingCatalog
	keys  *recording.Keyring
	rec   *recording.Recorder
}

// newEnv builds a recorder over a filesystem store (or blobs, if given)
// and a SQLite catalogue in a temporary data dir.
func newEnv(t testing.TB, blobs recording.BlobStore, tweak func(*recording.Options)) *env {
	t.Helper()
	dir := t.TempDir()
	if blobs == nil {
		fs, err := recording.NewFSStore(filepath.Join(dir, "recordings", "objects"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { fs.Close() })
		blobs = fs
	}
	cat, err := sqlite.OpenRecordingCatalog(context.Background(), filepath.Join(dir, "recordings", "catalog.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cat.Close() })
	kek, err := recording.LoadOrCreateKEKFile(filepath.Join(dir, "keys", recording.KEKFile))
	if err != nil {
		t.Fatal(err)
	}
	e := &env{dir: dir, blobs: blobs, cat: cat, keys: recording.NewKeyring(kek)}
	opts := recording.Options{
		Blobs: blobs, Catalog: cat, Keys: e.keys,
		SpillDir: filepath.Join(dir, "recordings", "tmp"),
	}
	if tweak != nil {
		tweak(&opts)
	}
	e.rec, err = recording.New(opts)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.rec.Close() })
	return e
}

// startS3 starts versitygw (recordingtest.StartS3).
func startS3(t testing.TB) *recordingtest.S3Server { return recordingtest.StartS3(t) }
