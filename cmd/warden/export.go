package main

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"time"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

// Compile-time checks: the stores' cursors and lease are what export
// consumes.
var (
	_ export.Cursor    = (*sqlite.ExportCursor)(nil)
	_ export.Cursor    = (*postgres.ExportCursor)(nil)
	_ export.Lease     = (*postgres.ExportStore)(nil)
	_ export.Positions = (*postgres.ExportStore)(nil)
	_ export.Positions = (*sqlite.ExportCursors)(nil)
)

// openExport starts the export service when export.sinks is configured.
// It reads the committed log only, so the data path never waits for a
// sink. It stops (after the log's Close, so the final checkpoint goes
// out too, within the shutdown timeout) through a.exportStop, which
// openAudit registered to run before the audit store closes.
func (a *app) openExport(ctx context.Context) error {
	ec := a.cfg.Export
	if len(ec.Sinks) == 0 || a.audit == nil {
		return nil
	}
	st := a.audit.Store()
	opts := export.ServiceOptions{
		Options: export.Options{
			Origin: a.audit.Verifier().Name(), ProductVersion: currentBuild().Version,
			Logger: a.log.With("component", "export"), Registerer: a.server.Registry(),
			Evidence: monitorEvidence{a},
		},
		LeaseCheck: ec.LeaseCheck,
	}
	for _, s := range ec.Sinks {
		opts.Sinks = append(opts.Sinks, s.Name)
	}
	var closeCursors func() error
	var cursor func(name string) export.Cursor
	switch {
	case ec.Cursor == "file":
		cursor = nil // FileCursor under export.dir
	case a.cfg.Audit.Store == "postgres":
		es, err := postgres.OpenExport(ctx, a.cfg.Audit.PostgresConfig(), a.cfg.Instance, a.log)
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		opts.Lease, opts.Positions, closeCursors = es, es, es.Close
		cursor = func(name string) export.Cursor { return es.Cursor(name) }
	default:
		cs, err := sqlite.OpenExportCursors(ctx, filepath.Join(a.cfg.DataDir, "export.db"))
		if err != nil {
			return fmt.Errorf("export: %w", err)
		}
		opts.Positions, closeCursors = cs, cs.Close
		cursor = func(name string) export.Cursor { return cs.Cursor(name) }
	}
	opts.Targets = func() ([]export.Target, error) { return ec.Targets(opts.Origin, cursor) }
	// The source polls the store's newest checkpoint: the log's in-memory
	// Latest (and WaitCheckpoint) now follow the signed head of every
	// batch, which the store's checkpoint history does not hold.
	src := export.NewLogSource(st, export.LogSourceOptions{
		Cosignatures: a.cosignatures,
		Poll:         100 * time.Millisecond,
	})
	svc, err := export.NewService(src, opts)
	if err != nil {
		if closeCursors != nil {
			closeCursors()
		}
		return err
	}
	a.export = svc
	// The entries this process commits go to the sinks from memory; the
	// store stays the source of truth (positions the feed does not hold
	// are read back, decision 022).
	a.audit.OnCommit(src.Feed)
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	done := make(chan struct{})
	go func() {
		defer close(done)
		if err := svc.Run(rctx); err != nil {
			a.log.Error("export stopped", "err", err)
		}
	}()
	a.exportStop = func(ctx context.Context) error {
		// Until every sink has the final checkpoint, for at most 5 s: a
		// sink that is down must not hold up the shutdown (its cursor
		// resumes at the next start).
		dctx, dcancel := context.WithTimeout(ctx, 5*time.Second)
		svc.Drain(dctx)
		dcancel()
		cancel()
		<-done
		a.audit.OnCommit(nil)
		if closeCursors != nil {
			return closeCursors()
		}
		return nil
	}
	// export.status (A.8.16): periodically while exporting, and once at
	// shutdown — this closer runs before the log's Close.
	go a.exportStatusLoop(rctx, defaultExportStatusEvery)
	a.closers = append(a.closers, func(ctx context.Context) error {
		a.recordExportStatus(ctx, "shutdown")
		return nil
	})
	a.log.Info("export started", "sinks", len(ec.Sinks), "cursor", ec.Cursor)
	return nil
}

// cosignatures returns the witness-cosigned notes kept for the checkpoint
// of size n (none without witnesses).
func (a *app) cosignatures(ctx context.Context, n int64) ([][]byte, error) {
	if a.cosigs == nil {
		return nil, nil
	}
	cs, err := a.cosigs.Cosignatures(ctx, "", n+1, 64)
	if err != nil && !errors.Is(err, audit.ErrNotFound) {
		return nil, err
	}
	var out [][]byte
	for _, c := range cs {
		if c.Size == n {
			out = append(out, c.Note)
		}
	}
	return out, nil
}
