package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/report"
)

// maxBundledRecording bounds one recording's canonical form read into a
// bundle (the bundle is assembled in memory).
const maxBundledRecording = 256 << 20

// recordingSource gives the evidence bundle the recordings' canonical
// forms, decrypted with the recordings' KEK on the exporting machine, so
// the auditor checks them with sha256sum alone.
type recordingSource struct{ rec *recording.Recorder }

func (s recordingSource) Canonical(ctx context.Context, id string) ([]byte, error) {
	rec, e, err := s.rec.Load(ctx, id, maxBundledRecording)
	if errors.Is(err, recording.ErrErased) {
		er := &report.ErasedRecording{}
		if e.Erasure == nil {
			// Load does not return the entry of an erased recording.
			e, _ = s.rec.Get(ctx, id)
		}
		if e.Erasure != nil {
			er.At, er.By, er.Reason = e.Erasure.At, e.Erasure.By, e.Erasure.Reason
		}
		return nil, fmt.Errorf("recording %s: %w", id, er)
	}
	if err != nil {
		return nil, err
	}
	var b bytes.Buffer
	if _, err := rec.Encode(&b); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

// openRecordingSource opens the recording store for reading, as `warden
// verify --recordings` does: the store of --config, else the default
// filesystem store under the data dir.
func openRecordingSource(ctx context.Context, f reportFlags) (report.RecordingSource, func(), error) {
	var cfg *config.Config
	if f.configFile != "" {
		c, err := config.Load(f.configFile)
		if err != nil {
			return nil, nil, err
		}
		cfg = c
	} else {
		cfg = &config.Config{DataDir: f.dataDir}
		cfg.Recordings.SetDefaults()
		cfg.Recordings.Resolve(f.dataDir)
	}
	rc := cfg.Recordings
	if _, err := os.Stat(rc.KeyFile); err != nil {
		return nil, nil, fmt.Errorf("--with-recordings: the recordings' key file %s: %w", rc.KeyFile, err)
	}
	cat, closeCat, err := openRecordingCatalog(ctx, cfg)
	if err != nil {
		return nil, nil, err
	}
	rc.Mode = recording.BestEffort // a reader never refuses
	rec, err := recording.Open(ctx, rc, cat, recording.Options{})
	if err != nil {
		closeCat()
		return nil, nil, err
	}
	return recordingSource{rec}, func() { rec.Close(); closeCat() }, nil
}
