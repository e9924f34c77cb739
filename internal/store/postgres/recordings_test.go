package postgres

import (
	"context"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recording/recordingtest"
)

func TestRecordingCatalogConformance(t *testing.T) {
	testDSN(t)
	recordingtest.RunCatalog(t, func(t *testing.T) recording.Catalog {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		c, err := OpenRecordingCatalog(ctx, Config{DSN: testDSN(t), Schema: newSchema(t), MaxConns: 4})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	})
}

// TestRecordingCatalogSharedByReplicas: two catalogues on one schema (two
// replicas) see each other's entries and erasures, and open concurrently
// without tripping over each other's table creation.
func TestRecordingCatalogSharedByReplicas(t *testing.T) {
	schema := newSchema(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	cats := make([]*RecordingCatalog, 2)
	errs := make(chan error, 2)
	for i := range cats {
		go func() {
			var err error
			cats[i], err = OpenRecordingCatalog(ctx, Config{DSN: testDSN(t), Schema: schema, MaxConns: 2})
			errs <- err
		}()
	}
	for range cats {
		if err := <-errs; err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range cats {
		t.Cleanup(func() { c.Close() })
	}
	e := recordingtest.Entry(1)
	if err := cats[0].Put(ctx, e); err != nil {
		t.Fatal(err)
	}
	got, err := cats[1].Get(ctx, e.ID)
	if err != nil || got.WrappedKey == nil {
		t.Fatalf("replica B does not see A's recording: %+v, %v", got, err)
	}
	if _, err := cats[1].Erase(ctx, e.ID, recording.Erasure{At: time.Now(), By: "b", Reason: "test"}); err != nil {
		t.Fatal(err)
	}
	if got, _ := cats[0].Get(ctx, e.ID); got.WrappedKey != nil || got.Erasure == nil {
		t.Errorf("replica A still has the key B erased: %+v", got)
	}
}
