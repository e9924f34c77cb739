package recording_test

import (
	"testing"

	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/recording/recordingtest"
)

func TestFSStoreConformance(t *testing.T) {
	recordingtest.RunBlobStore(t, func(t *testing.T) recording.BlobStore {
		s, err := recording.NewFSStore(t.TempDir())
		if err != nil {
			t.Fatal(err)
		}
		return s
	})
}

func TestS3StoreConformance(t *testing.T) {
	srv := startS3(t)
	recordingtest.RunBlobStore(t, func(t *testing.T) recording.BlobStore { return srv.Store(t) })
}
