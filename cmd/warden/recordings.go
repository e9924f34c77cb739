package main

import (
	"context"
	"fmt"
	"time"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/recording"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// openRecordings opens the session recorder (docs/recording.md): the
// catalogue (SQLite beside the data, or PostgreSQL), the object store,
// the key-encryption key, and the erasure log over the audit log.
func (a *app) openRecordings(ctx context.Context) error {
	rc := a.cfg.Recordings
	cat, closeCat, err := openRecordingCatalog(ctx, a.cfg)
	if err != nil {
		return err
	}
	o := recording.Options{Logger: a.log, StripHeaders: recordingStripHeaders(a.cfg)}
	if a.audit != nil {
		o.ErasureLog = erasureLog{log: a.audit, instance: a.cfg.Instance}
	} else {
		a.log.Warn("recordings without the audit log: erasures are not recorded anywhere")
	}
	rec, err := recording.Open(ctx, rc, cat, o)
	if err != nil {
		closeCat()
		return fmt.Errorf("recordings: %w", err)
	}
	a.recorder = rec
	// The recorder commits what is queued before its catalogue closes
	// (closers run in reverse); the gateway has drained by then.
	a.closers = append(a.closers, func(context.Context) error { closeCat(); return nil })
	a.closers = append(a.closers, func(context.Context) error { return rec.Close() })
	return nil
}

// openRecordingCatalog opens the catalogue recordings.catalog names.
func openRecordingCatalog(ctx context.Context, cfg *config.Config) (recording.Catalog, func(), error) {
	rc := cfg.Recordings
	if rc.Catalog == "postgres" {
		dsn := rc.CatalogDSN
		if dsn == "" {
			dsn = cfg.Audit.DSN
		}
		if dsn == "" {
			return nil, nil, fmt.Errorf("recordings.catalog: postgres needs recordings.catalog_dsn or audit.dsn")
		}
		c, err := postgres.OpenRecordingCatalog(ctx, postgres.Config{DSN: dsn})
		if err != nil {
			return nil, nil, fmt.Errorf("recording catalogue: %w", err)
		}
		return c, func() { c.Close() }, nil
	}
	c, err := sqlite.OpenRecordingCatalog(ctx, rc.CatalogPath)
	if err != nil {
		return nil, nil, fmt.Errorf("recording catalogue: %w", err)
	}
	return c, func() { c.Close() }, nil
}

// recordingStripHeaders are header names that carry credentials in this
// configuration besides the well-known ones the recorder always drops:
// the identity assertion and the routes' upstream credentials.
func recordingStripHeaders(cfg *config.Config) []string {
	var out []string
	if cfg.Identity != nil {
		out = append(out, cfg.Identity.Assertion.Header)
	}
	for _, r := range cfg.Routes {
		if r.UpstreamCredential != nil {
			out = append(out, r.UpstreamCredential.Header)
		}
	}
	return out
}

// erasureLog records each erasure in the audit log as recording.erased
// before the recorder destroys the key: if the entry cannot be made
// durable, nothing is erased.
type erasureLog struct {
	log      *audit.Log
	instance string
}

func (l erasureLog) RecordErasure(ctx context.Context, e recording.Erased) error {
	en := &audit.Entry{
		Kind: audit.KindRecordingErased, Time: e.At, RequestID: e.RequestID, Instance: l.instance,
		// The admin who asked, when erasure came through the admin API.
		Principal: admin.PrincipalFrom(ctx),
		Details: map[string]any{
			"recording_id": e.ID, "digest": e.Digest.String(), "recorded_principal": e.Principal,
			"started_at": e.StartedAt.UTC().Format(time.RFC3339Nano),
			"erased_by":  e.By, "erased_at": e.At.UTC().Format(time.RFC3339Nano), "reason": e.Reason,
		},
	}
	_, err := l.log.Append(ctx, en)
	return err
}
