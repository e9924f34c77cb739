package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/recording"
)

// verifyRecordings is `warden verify --recordings`: every stored
// recording is read back in full — every chunk authenticated, the digest
// recomputed — and compared with the catalogue's digest and with the one
// its terminal audit entry carries. It returns how many failed.
func verifyRecordings(ctx context.Context, f verifyFlags, st audit.Store, stdout io.Writer) (int, error) {
	var rc recording.Config
	var cfg *config.Config
	if f.config != "" {
		c, err := config.Load(f.config)
		if err != nil {
			return 0, err
		}
		cfg, rc = c, c.Recordings
	} else {
		cfg = &config.Config{DataDir: f.dataDir}
		rc.SetDefaults()
		rc.Resolve(f.dataDir)
		cfg.Recordings = rc
	}
	// Verification creates nothing: without a key file or a catalogue
	// there are no recordings.
	if _, err := os.Stat(rc.KeyFile); errors.Is(err, os.ErrNotExist) {
		fmt.Fprintf(stdout, "recordings: none (no key file %s)\n", rc.KeyFile)
		return 0, nil
	}
	if rc.Catalog == "sqlite" {
		if _, err := os.Stat(rc.CatalogPath); errors.Is(err, os.ErrNotExist) {
			fmt.Fprintf(stdout, "recordings: none (no catalogue %s)\n", rc.CatalogPath)
			return 0, nil
		}
	}
	logDigests, err := recordingDigestsInLog(ctx, st)
	if err != nil {
		return 0, err
	}
	cat, closeCat, err := openRecordingCatalog(ctx, cfg)
	if err != nil {
		return 0, err
	}
	defer closeCat()
	rc.Mode = recording.BestEffort // a reader never refuses
	rec, err := recording.Open(ctx, rc, cat, recording.Options{})
	if err != nil {
		return 0, err
	}
	defer rec.Close()
	var ok, erased, bad int
	err = rec.VerifyAll(ctx, func(e recording.Entry, verr error) error {
		switch {
		case errors.Is(verr, recording.ErrErased):
			erased++
		case verr != nil:
			bad++
			fmt.Fprintf(stdout, "FAILED: recording %s (request %s): %v\n", e.ID, e.RequestID, verr)
			return nil
		default:
			ok++
		}
		if d, found := logDigests[e.ID]; !found {
			fmt.Fprintf(stdout, "warning: recording %s (request %s): no terminal audit entry names it (an entry still to be written, or another store's log)\n", e.ID, e.RequestID)
		} else if d != e.Digest.String() {
			bad++
			fmt.Fprintf(stdout, "FAILED: recording %s (request %s): digest %s, the audit log committed to %s\n", e.ID, e.RequestID, e.Digest, d)
		}
		return nil
	})
	if err != nil {
		return bad, err
	}
	fmt.Fprintf(stdout, "recordings: %d verified, %d erased (digest kept in the log), %d failed\n", ok, erased, bad)
	return bad, nil
}

// recordingDigestsInLog maps recording ids to the digests the terminal
// entries of the log carry.
func recordingDigestsInLog(ctx context.Context, st audit.Store) (map[string]string, error) {
	size, err := st.Size(ctx)
	if err != nil {
		return nil, err
	}
	out := map[string]string{}
	for from := int64(0); from < size; from += 1000 {
		recs, err := st.ReadRecords(ctx, from, min(from+1000, size))
		if err != nil {
			return nil, err
		}
		for i, r := range recs {
			e, err := audit.ParseEntry(from+int64(i), r.Data)
			if err != nil || e.Kind != audit.KindRequestCompleted {
				continue // verification proper reports malformed entries
			}
			if id, d := admin.RecordingOf(e); id != "" && d != "" {
				out[id] = d
			}
		}
	}
	return out, nil
}
