package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"time"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
)

// auditSource adapts an audit.Store to what internal/witness reads: the
// newest signed checkpoint, consistency proofs and tree hashes. It is the
// only place where witnessing touches the audit log's storage.
type auditSource struct {
	st audit.Store
	// probe, when set, signs a checkpoint of the empty tree if the store
	// has none yet, so the start-up check can still ask the witnesses
	// whether they have seen this log (a data dir rolled back to before
	// its first checkpoint). Only set during the check.
	probe note.Signer
	// head, when set (embedded store), is the checkpoint file whose head
	// file holds the tree head signed after every batch: Latest offers
	// it to the witnesses when it is ahead of the store's checkpoints, so
	// what a witness cosigns trails the acknowledged entries by at most
	// the submitter's poll, not by checkpoint_every.
	head     string
	verifier note.Verifier
}

func (s *auditSource) reader(ctx context.Context) tlog.HashReader {
	return tlog.HashReaderFunc(func(idx []int64) ([]tlog.Hash, error) { return s.st.ReadHashes(ctx, idx) })
}

// Latest returns the store's newest checkpoint.
func (s *auditSource) Latest(ctx context.Context) (witness.Checkpoint, error) {
	c, err := s.st.LatestCheckpoint(ctx)
	if s.head != "" && (err == nil || errors.Is(err, audit.ErrNotFound)) {
		if b, rerr := audit.ReadHead(ctx, s.st, s.head); rerr == nil && b != nil {
			if h, herr := audit.OpenCheckpoint(b, s.verifier); herr == nil && h.Size > c.Size {
				if n, serr := s.st.Size(ctx); serr == nil && h.Size <= n {
					c, err = h, nil
				}
			}
		}
	}
	switch {
	case err == nil:
		origin, _, _ := bytes.Cut(c.Note, []byte("\n"))
		return witness.Checkpoint{Origin: string(origin), Size: c.Size, Hash: c.Hash, Note: c.Note}, nil
	case errors.Is(err, audit.ErrNotFound) && s.probe != nil:
		empty := tlog.Hash(sha256.Sum256(nil))
		c, err := audit.SignCheckpoint(s.probe, 0, empty, time.Now())
		if err != nil {
			return witness.Checkpoint{}, err
		}
		return witness.Checkpoint{Origin: s.probe.Name(), Size: 0, Hash: empty, Note: c.Note}, nil
	case errors.Is(err, audit.ErrNotFound):
		return witness.Checkpoint{}, nil
	}
	return witness.Checkpoint{}, err
}

// ConsistencyProof proves that tree old is a prefix of tree new.
func (s *auditSource) ConsistencyProof(ctx context.Context, old, new int64) (tlog.TreeProof, error) {
	return tlog.ProveTree(new, old, s.reader(ctx))
}

// Size is the number of entries in the store.
func (s *auditSource) Size(ctx context.Context) (int64, error) { return s.st.Size(ctx) }

// TreeHash is the tree hash of the first n entries, from the stored
// hashes (which audit.Verify checks against the entries).
func (s *auditSource) TreeHash(ctx context.Context, n int64) (tlog.Hash, error) {
	return tlog.TreeHash(n, s.reader(ctx))
}

// openWitnesses sets up witnessing before the audit log opens: the
// start-up check (a store older than, or forked from, what a witness
// cosigned refuses to start unless allow_unverified_start) and the
// submitter, started by startWitnesses once the log is open. It returns
// details for the gateway.started entry when the check failed and the
// start was allowed anyway.
func (a *app) openWitnesses(ctx context.Context, st audit.Store, signer note.Signer, verifier note.Verifier) (map[string]any, error) {
	c := a.cfg.Audit
	if len(c.Witnesses) == 0 {
		return nil, nil
	}
	wst, ok := st.(witness.Store) // PostgreSQL keeps cosignatures in its schema
	if !ok {
		cs, err := sqlite.OpenCosignatures(ctx, c.Witnessing.CosignatureDB)
		if err != nil {
			return nil, fmt.Errorf("audit witnesses: %w", err)
		}
		a.closers = append(a.closers, func(context.Context) error { return cs.Close() })
		wst = cs
	}
	src := &auditSource{st: st, probe: signer}
	sub, err := witness.New(src, wst, verifier, c.Witnesses, c.Witnessing, witness.WithLogger(a.log), witness.WithEvidence(monitorEvidence{a}))
	if err != nil {
		return nil, fmt.Errorf("audit witnesses: %w", err)
	}
	var details map[string]any
	if c.Witnessing.StartCheckOn() {
		timeout := witness.DefaultTimeout
		for _, e := range c.Witnesses {
			timeout = max(timeout, e.Timeout)
		}
		cctx, cancel := context.WithTimeout(ctx, 2*timeout+5*time.Second)
		err := sub.Check(cctx, src)
		cancel()
		var d *witness.Divergence
		switch {
		case errors.As(err, &d) && c.AllowUnverifiedStart:
			a.log.Error("audit: THE AUDIT STORE CONTRADICTS ITS WITNESSES; starting anyway because allow_unverified_start is set",
				"divergence", d.Msg, "witnesses", d.Witnesses, "size", d.Size)
			details = map[string]any{"witness_unverified_start": true, "witness_divergence": d.Msg}
		case errors.As(err, &d):
			return nil, fmt.Errorf("audit: open: the audit store is older than, or inconsistent with, what its witnesses cosigned (set audit.allow_unverified_start to start anyway): %w", err)
		case err != nil:
			return nil, fmt.Errorf("audit: witness start-up check: %w", err)
		default:
			a.log.Info("audit: the store is consistent with its witnesses", "witnesses", len(c.Witnesses))
		}
	}
	src.probe = nil
	if c.Store == "sqlite" && c.CheckpointFile != "" {
		src.head, src.verifier = c.CheckpointFile, verifier
	}
	a.witness = sub
	a.cosigs = wst
	return details, nil
}

// startWitnesses runs the submitter for the app's lifetime. On close it
// stops, then submits the log's final checkpoint (signed by Log.Close,
// which runs first) within the shutdown timeout.
func (a *app) startWitnesses() {
	if a.witness == nil {
		return
	}
	rctx, cancel := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() {
		defer close(done)
		a.witness.Run(rctx)
	}()
	a.witnessStop = func(ctx context.Context) error {
		cancel()
		<-done
		fctx, fcancel := context.WithTimeout(ctx, 5*time.Second)
		defer fcancel()
		a.witness.Flush(fctx)
		return nil
	}
}
