package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/mod/sumdb/note"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/export"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
)

type verifyFlags struct {
	dataDir, db, dsn, schema, key, checkpointFile, segment, writeSegment string
	exports                                                              []string
	from, to                                                             int64
	witnesses, cosigned                                                  []string
	minWitnesses                                                         int
	cosignatureDB                                                        string
	skipIndex                                                            bool
	bundle                                                               string
	recordings                                                           bool
	config                                                               string
}

// newVerifyCmd is `warden verify`: offline verification of the audit log
// in a store (SQLite under --data-dir, or PostgreSQL with --dsn) or of
// exported segments (--segment). Exit status 0 only if everything holds.
func newVerifyCmd() *cobra.Command {
	var f verifyFlags
	cmd := &cobra.Command{
		Use:   "verify [--data-dir D | --dsn DSN | --segment PATH --key FILE | --export FILE.jsonl --key FILE]",
		Short: "Verify the audit log offline: every hash, every checkpoint signature, nothing removed",
		Long: `Verify recomputes every entry's leaf hash and every tree hash, checks every
signed checkpoint against the verifier key and against the recomputed tree
(so consecutive checkpoints are consistent), and checks the checkpoint file
kept outside the store. It reports the first divergence with the entry's
sequence number, and exits 0 only if everything holds.

With --write-segment FILE it then writes the verified segment [--from, --to)
as JSON lines, verifiable on its own with --segment FILE --key audit.verifier.

With --export FILE.jsonl (an OCSF event stream from an export sink, e.g. the
file sink, or the events a SIEM holds, in order; several files of one
stream in order) and --key it checks the stream instead of a store: every
checkpoint signed by the key, events contiguous in sequence, every event's
content bound to its leaf hash and every leaf inside the signed checkpoints'
trees — so an event removed, altered, inserted or reordered is found.

With --witness KEY (a witness's cosignature verifier key, or a file of
them; repeatable) it also finds the newest checkpoint cosigned by at least
--min-witnesses of those witnesses — among the cosignatures the store
keeps and the cosigned checkpoints given with --checkpoint FILE (e.g. the
witness's own copy, or one exported off the host) — and refuses a store
that is shorter than it or whose tree at that size differs: a log
truncated, rolled back as a whole, or rewritten by whoever holds the
signing key.

Then it checks the search index against the log (as "warden index check"
does; --skip-index skips it). The index is not evidence, but an edited one
hides entries from searches: if it differs, verify prints every
difference and exits 3 (the log itself verified).`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runVerify(cmd.Context(), f, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./warden-data", "data directory (audit.db, audit.checkpoint, keys/audit.verifier)")
	fl.StringVar(&f.db, "db", "", "SQLite audit store (default <data-dir>/audit.db)")
	fl.StringVar(&f.dsn, "dsn", "", "PostgreSQL audit store DSN (instead of SQLite); opened read-only, a SELECT-only role suffices")
	fl.StringVar(&f.schema, "schema", "warden", "with --dsn: the PostgreSQL schema (audit.postgres.schema)")
	fl.StringVar(&f.key, "key", "", "verifier key file (default <data-dir>/keys/audit.verifier)")
	fl.StringVar(&f.checkpointFile, "checkpoint-file", "", "latest checkpoint kept outside the store (default <data-dir>/audit.checkpoint if present)")
	fl.StringVar(&f.segment, "segment", "", "verify an exported segment file, or every *.jsonl in a directory, instead of a store")
	fl.StringVar(&f.writeSegment, "write-segment", "", "after verifying the store, write the segment [--from, --to) to this file")
	fl.Int64Var(&f.from, "from", 0, "write-segment: first entry (0 or a checkpoint size)")
	fl.Int64Var(&f.to, "to", 0, "write-segment: end (a checkpoint size; 0 = latest checkpoint)")
	fl.StringArrayVar(&f.exports, "export", nil, "verify an exported OCSF event stream (JSON lines; repeat for several files of one stream, in order) instead of a store")
	fl.StringArrayVar(&f.witnesses, "witness", nil, "witness cosignature/v1 verifier key, or a file of keys (repeatable): check the store against the newest checkpoint they cosigned")
	fl.IntVar(&f.minWitnesses, "min-witnesses", 1, "with --witness: cosignatures needed on a checkpoint for it to count")
	fl.StringVar(&f.cosignatureDB, "cosignature-db", "", "with --witness: the cosignatures kept beside an embedded store (default <data-dir>/cosignatures.db if present)")
	fl.BoolVar(&f.skipIndex, "skip-index", false, "do not check the search index against the log")
	fl.StringVar(&f.bundle, "bundle", "", "verify an evidence bundle (warden evidence export) offline instead of a store; --key is the log's verifier key")
	fl.BoolVar(&f.recordings, "recordings", false, "also read back every stored session recording (content authenticated, digest against the catalogue and the audit log)")
	fl.StringVar(&f.config, "config", "", "with --recordings: the gateway config naming the recording store (default: filesystem store and SQLite catalogue under --data-dir)")
	fl.StringArrayVar(&f.cosigned, "checkpoint", nil, "with --witness: a cosigned checkpoint kept outside the operator's control (repeatable)")
	return cmd
}

func runVerify(ctx context.Context, f verifyFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	if f.bundle != "" {
		return verifyBundleFile(ctx, f, stdout, stderr)
	}
	keyPath := f.key
	if keyPath == "" {
		_, keyPath = audit.KeyPaths(f.dataDir)
	}
	v, err := audit.LoadVerifier(keyPath)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if f.segment != "" {
		return verifySegments(ctx, f.segment, v, stdout)
	}
	if len(f.exports) > 0 {
		return verifyExport(f.exports, v, stdout)
	}

	var st audit.Store
	single := true
	if f.dsn != "" {
		// Read-only: verification never migrates or writes, works with a
		// role that may only SELECT, and refuses a database without
		// Warden's schema instead of verifying an empty log.
		s, err := postgres.OpenReadOnly(ctx, postgres.Config{DSN: f.dsn, Schema: f.schema})
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		st, single = s, false
	} else {
		db := f.db
		if db == "" {
			db = filepath.Join(f.dataDir, "audit.db")
		}
		s, err := sqlite.OpenReadOnly(ctx, db)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if fc := s.FramesCorrupt(); fc != nil {
			// Damage inside the frame file is a divergence at the frame's
			// first entry, not an I/O error.
			s.Close()
			fmt.Fprintf(stdout, "FAILED: entry %d: the frame file does not verify from there on: %v\n", fc.Seq, fc.Err)
			return &exitError{code: 1, err: fmt.Errorf("audit log does not verify")}
		}
		if n := s.Torn(); n > 0 {
			fmt.Fprintf(stderr, "warning: the frame file %s ends with %d bytes of a write cut short (a crash); left in place, the gateway cuts them at its next start\n",
				sqlite.FramesPath(db), n)
		}
		st = s
	}
	defer st.Close()

	cpFile := f.checkpointFile
	if cpFile == "" && f.dsn == "" {
		cpFile = filepath.Join(f.dataDir, "audit.checkpoint")
	}
	var ext []byte
	var extSrc string
	if cpFile != "" {
		if f.checkpointFile != "" {
			if _, err := os.Stat(cpFile); err != nil {
				return &exitError{code: 2, err: err}
			}
		}
		// The newest of the checkpoint file, the head signed after every
		// batch (audit.checkpoint.head) and the head the store committed
		// with its last batch.
		ext, extSrc, err = audit.ReadHeadFrom(ctx, st, cpFile)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if file, _ := audit.ReadExternal(cpFile); file == nil {
			fmt.Fprintf(stderr, "warning: no checkpoint file %s: a store rolled back as a whole would not be detected\n", cpFile)
		}
	}
	rep, err := audit.Verify(ctx, st, v, audit.VerifyOptions{External: ext, ExternalSource: extSrc, SingleWriter: single})
	if err != nil {
		var d *audit.Divergence
		if errors.As(err, &d) {
			fmt.Fprintf(stdout, "FAILED: %s\n", d.Msg)
			return &exitError{code: 1, err: fmt.Errorf("audit log does not verify")}
		}
		return &exitError{code: 2, err: err}
	}
	printReport(stdout, rep)
	if len(f.witnesses) > 0 || len(f.cosigned) > 0 {
		if err := verifyWitnessed(ctx, st, v, f, stdout); err != nil {
			return err
		}
	}
	if err := reportUnverifiedStarts(ctx, st, stdout); err != nil {
		return &exitError{code: 2, err: err}
	}
	if err := reportOpenRequests(ctx, st, rep.Size, stdout); err != nil {
		return &exitError{code: 2, err: err}
	}
	if f.recordings {
		bad, err := verifyRecordings(ctx, f, st, stdout)
		if err != nil {
			return &exitError{code: 2, err: fmt.Errorf("recordings: %w", err)}
		}
		if bad > 0 {
			return &exitError{code: 1, err: fmt.Errorf("%d recordings do not verify", bad)}
		}
	}
	if f.writeSegment != "" {
		if err := exportSegment(ctx, st, f); err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "wrote segment to %s\n", f.writeSegment)
	}
	if im, ok := st.(audit.IndexMaintainer); ok && !f.skipIndex {
		differs, err := reportIndex(ctx, im, stdout)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		if differs {
			fmt.Fprintln(stdout, "LOG OK, SEARCH INDEX DIFFERS")
			return &exitError{code: 3, err: errors.New("the audit log verifies, but its search index differs from it (warden index rebuild)")}
		}
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}

func printReport(w io.Writer, rep audit.Report) {
	secs := rep.Elapsed.Seconds()
	rate := 0.0
	if secs > 0 {
		rate = float64(rep.Size-rep.From) / secs
	}
	fmt.Fprintf(w, "verified entries [%d, %d) and %d signed checkpoints in %s (%.0f entries/s)\n",
		rep.From, rep.Size, rep.Checkpoints, rep.Elapsed.Round(time.Millisecond), rate)
	if rep.Latest.Note != nil {
		fmt.Fprintf(w, "latest checkpoint: size %d, tree hash %s, signed %s\n",
			rep.Latest.Size, rep.Latest.Hash, rep.Latest.Time.Format(time.RFC3339))
	}
	if rep.UnsignedTail > 0 {
		fmt.Fprintf(w, "note: %d entries after the latest checkpoint are not signed yet (the gateway signs them within checkpoint_interval, or at its next start after a crash)\n", rep.UnsignedTail)
	}
}

// reportUnverifiedStarts lists gateway starts that overrode a failed
// verification: the log verifies again after them, but an auditor must
// see that it once did not.
func reportUnverifiedStarts(ctx context.Context, st audit.Store, w io.Writer) error {
	// Reads the log itself: what reports must not depend on the index.
	size, err := st.Size(ctx)
	if err != nil {
		return err
	}
	marker := []byte(`"kind":"` + audit.KindGatewayStarted + `"`)
	const chunk = 10000
	for from := int64(0); from < size; from += chunk {
		recs, err := st.ReadRecords(ctx, from, min(from+chunk, size))
		if err != nil {
			return err
		}
		for _, r := range recs {
			if !bytes.Contains(r.Data, marker) {
				continue
			}
			e, err := audit.ParseEntry(r.Seq, r.Data)
			if err != nil {
				return err
			}
			if e.Kind != audit.KindGatewayStarted {
				continue
			}
			if e.Details["unverified_start"] == true {
				fmt.Fprintf(w, "WARNING: entry %d: the gateway started on %s although the store did not verify: %v\n",
					e.Seq, e.Time.Format(time.RFC3339), e.Details["divergence"])
			}
			if e.Details["witness_unverified_start"] == true {
				fmt.Fprintf(w, "WARNING: entry %d: the gateway started on %s although the store contradicted its witnesses: %v\n",
					e.Seq, e.Time.Format(time.RFC3339), e.Details["witness_divergence"])
			}
		}
	}
	return nil
}

// maxOpenListed caps the open request ids verify prints.
const maxOpenListed = 20

// reportOpenRequests prints the admissions without a terminal entry: on a
// stopped gateway there are none (a start closes what a crash left open
// with request.abandoned); on a running one, its requests in flight.
func reportOpenRequests(ctx context.Context, st audit.Store, size int64, w io.Writer) error {
	open, err := audit.OpenRequests(ctx, st, 0, size)
	if err != nil {
		return err
	}
	fmt.Fprintf(w, "open requests: %d (admitted without request.completed or request.abandoned; in flight if the gateway is running)\n", len(open))
	for i, r := range open {
		if i == maxOpenListed {
			fmt.Fprintf(w, "  … and %d more\n", len(open)-maxOpenListed)
			break
		}
		fmt.Fprintf(w, "  entry %d: request %s, instance %s, admitted %s\n", r.Seq, r.RequestID, r.Instance, r.Time.Format(time.RFC3339Nano))
	}
	return nil
}

func exportSegment(ctx context.Context, st audit.Store, f verifyFlags) error {
	out, err := os.OpenFile(f.writeSegment, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if err := audit.Export(ctx, st, out, f.from, f.to); err != nil {
		out.Close()
		os.Remove(f.writeSegment)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func verifySegments(ctx context.Context, path string, v note.Verifier, stdout io.Writer) error {
	files := []string{path}
	if fi, err := os.Stat(path); err != nil {
		return &exitError{code: 2, err: err}
	} else if fi.IsDir() {
		files, err = filepath.Glob(filepath.Join(path, "*.jsonl"))
		if err != nil || len(files) == 0 {
			return &exitError{code: 2, err: fmt.Errorf("no *.jsonl segment in %s", path)}
		}
		sort.Strings(files)
	}
	for _, file := range files {
		fh, err := os.Open(file)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		rep, err := audit.VerifySegment(ctx, fh, v)
		fh.Close()
		if err != nil {
			var d *audit.Divergence
			if errors.As(err, &d) {
				fmt.Fprintf(stdout, "FAILED: %s: %s\n", file, strings.TrimPrefix(d.Msg, "audit: "))
				return &exitError{code: 1, err: fmt.Errorf("segment does not verify")}
			}
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(stdout, "%s: ", file)
		printReport(stdout, rep)
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}

// verifyWitnessed checks the (already verified) store against the newest
// checkpoint cosigned by at least --min-witnesses of the --witness keys.
func verifyWitnessed(ctx context.Context, st audit.Store, v note.Verifier, f verifyFlags, stdout io.Writer) error {
	usage := func(format string, args ...any) error {
		return &exitError{code: 2, err: fmt.Errorf(format, args...)}
	}
	if len(f.witnesses) == 0 {
		return usage("--checkpoint needs --witness KEY: a cosigned checkpoint only counts with the witnesses' keys")
	}
	keys, err := loadWitnessKeys(f.witnesses)
	if err != nil {
		return usage("%v", err)
	}
	if f.minWitnesses < 1 || f.minWitnesses > len(keys) {
		return usage("--min-witnesses must be between 1 and the number of witness keys (%d)", len(keys))
	}
	var extra [][]byte
	for _, p := range f.cosigned {
		b, err := os.ReadFile(p)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		extra = append(extra, b)
	}
	wst, _ := st.(witness.Store)
	if wst == nil {
		path := f.cosignatureDB
		if path == "" {
			path = filepath.Join(f.dataDir, "cosignatures.db")
		}
		cs, err := sqlite.OpenCosignaturesReadOnly(ctx, path)
		switch {
		case err == nil:
			defer cs.Close()
			wst = cs
		case f.cosignatureDB != "" || !errors.Is(err, os.ErrNotExist):
			return &exitError{code: 2, err: err}
		}
	}
	best, ok, problems, err := witness.Newest(ctx, wst, extra, v, keys, f.minWitnesses)
	for _, p := range problems {
		fmt.Fprintf(stdout, "warning: %s\n", p)
	}
	var d *witness.Divergence
	switch {
	case errors.As(err, &d):
		fmt.Fprintf(stdout, "FAILED: %s\n", d.Msg)
		return &exitError{code: 1, err: fmt.Errorf("audit log contradicts its witnesses")}
	case err != nil:
		return &exitError{code: 2, err: err}
	case !ok:
		fmt.Fprintf(stdout, "FAILED: no checkpoint is cosigned by at least %d of the given witnesses (in the store or --checkpoint): the log's history is not witnessed\n", f.minWitnesses)
		return &exitError{code: 1, err: fmt.Errorf("audit log is not witnessed")}
	}
	if err := witness.CheckTree(ctx, &auditSource{st: st}, best); err != nil {
		if errors.As(err, &d) {
			fmt.Fprintf(stdout, "FAILED: %s\n", d.Msg)
			return &exitError{code: 1, err: fmt.Errorf("audit log contradicts its witnesses")}
		}
		return &exitError{code: 2, err: err}
	}
	var who []string
	for _, s := range best.Sigs {
		who = append(who, fmt.Sprintf("%s (%s)", s.Witness, s.Time.Format(time.RFC3339)))
	}
	fmt.Fprintf(stdout, "witnessed: checkpoint of size %d (tree hash %s) cosigned by %s; the store is consistent with it\n",
		best.Size, best.Hash, strings.Join(who, ", "))
	return nil
}

// loadWitnessKeys reads --witness values: a verifier key, or a file with
// one key per line (blank lines and # comments ignored).
func loadWitnessKeys(args []string) ([]*witness.Verifier, error) {
	var out []*witness.Verifier
	seen := map[string]bool{}
	add := func(k string) error {
		v, err := witness.NewVerifier(k)
		if err != nil {
			return err
		}
		if !seen[v.String()] {
			seen[v.String()] = true
			out = append(out, v)
		}
		return nil
	}
	for _, a := range args {
		_, kerr := witness.NewVerifier(a)
		if kerr == nil {
			add(a)
			continue
		}
		b, err := os.ReadFile(a)
		if err != nil {
			if strings.Contains(a, "+") {
				return nil, fmt.Errorf("--witness: %v", kerr)
			}
			return nil, fmt.Errorf("--witness %q is neither a witness verifier key nor a readable file: %v", a, err)
		}
		n := 0
		for _, line := range strings.Split(string(b), "\n") {
			line = strings.TrimSpace(line)
			if line == "" || strings.HasPrefix(line, "#") {
				continue
			}
			if err := add(line); err != nil {
				return nil, fmt.Errorf("--witness %s: %v", a, err)
			}
			n++
		}
		if n == 0 {
			return nil, fmt.Errorf("--witness %s: no key in the file", a)
		}
	}
	return out, nil
}

// verifyExport checks an exported OCSF event stream (the files in order,
// read as one stream) with export.VerifyStream.
func verifyExport(paths []string, v note.Verifier, stdout io.Writer) error {
	var rs []io.Reader
	for _, p := range paths {
		f, err := os.Open(p)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer f.Close()
		rs = append(rs, f)
	}
	rep, err := export.VerifyStream(io.MultiReader(rs...), v)
	if err != nil {
		var se *export.StreamError
		if errors.As(err, &se) {
			fmt.Fprintf(stdout, "FAILED: %s\n", se.Error())
			return &exitError{code: 1, err: errors.New("the exported stream does not verify")}
		}
		return &exitError{code: 2, err: err}
	}
	fmt.Fprintf(stdout, "exported stream: %d entry events (%d re-sent), %d checkpoints, entries %d..%d, %d bound to signed checkpoints (latest size %d) in %s\n",
		rep.Events, rep.Duplicates, rep.Checkpoints, rep.First, rep.Last, rep.Bound, rep.Latest.Size, rep.Elapsed.Round(time.Millisecond))
	if rep.UnboundTail > 0 {
		fmt.Fprintf(stdout, "note: the last %d entries follow the last exported checkpoint: not provable from this stream yet\n", rep.UnboundTail)
	}
	if rep.ContentUnbound > 0 {
		fmt.Fprintf(stdout, "note: %d events carry no entry (their sink drops parameters): their position and leaf hash are proven, their other fields are not\n", rep.ContentUnbound)
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
