package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/user"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/report"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
	"github.com/wardenhq/warden/internal/witness"
)

// reportFlags are the flags `warden report` and `warden evidence export`
// share: where the log is, the period, and how to describe it.
type reportFlags struct {
	dataDir, db, dsn, key, checkpointFile, cosignatureDB, configFile string
	from, to, out, format                                            string
	witnesses, policies                                              []string
	seed                                                             uint64
	wait                                                             time.Duration
	withRecordings                                                   bool
}

func (f *reportFlags) register(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringVar(&f.dataDir, "data-dir", "./warden-data", "data directory (audit.db, audit.checkpoint, keys/audit.verifier)")
	fl.StringVar(&f.db, "db", "", "SQLite audit store (default <data-dir>/audit.db)")
	fl.StringVar(&f.dsn, "dsn", "", "PostgreSQL audit store DSN (instead of SQLite)")
	fl.StringVar(&f.key, "key", "", "verifier key file (default <data-dir>/keys/audit.verifier)")
	fl.StringVar(&f.checkpointFile, "checkpoint-file", "", "latest checkpoint kept outside the store (default <data-dir>/audit.checkpoint if present)")
	fl.StringVar(&f.cosignatureDB, "cosignature-db", "", "witness cosignatures beside an embedded store (default <data-dir>/cosignatures.db if present)")
	fl.StringArrayVar(&f.witnesses, "witness", nil, "witness cosignature verifier key, or a file of keys (repeatable): verify the cosignatures")
	fl.StringVar(&f.configFile, "config", "", "warden.yaml, to name each route's upstream on the cover")
	fl.StringVar(&f.from, "from", "", "start of the period (RFC 3339, or a date YYYY-MM-DD in UTC), included")
	fl.StringVar(&f.to, "to", "", "end of the period (RFC 3339, or a date), excluded")
	fl.StringVar(&f.out, "out", "", "output file")
	fl.Uint64Var(&f.seed, "seed", 0, "seed of the random samples (default: a random one, printed in the report)")
	_ = cmd.MarkFlagRequired("from")
	_ = cmd.MarkFlagRequired("to")
	_ = cmd.MarkFlagRequired("out")
}

// newReportCmd is `warden report`: the ISO 27001 evidence report for a
// period, computed from the audit log.
func newReportCmd() *cobra.Command {
	var f reportFlags
	cmd := &cobra.Command{
		Use:   "report --from T1 --to T2 [--format html|pdf|json] --out FILE",
		Short: "Write the ISO/IEC 27001 evidence report of a period, computed from the verified audit log",
		Long: `Report verifies the audit log (every hash recomputed, every checkpoint
signature checked), takes the entries of the period [--from, --to) and
writes the evidence report: a cover (scope, period, checkpoints,
verification result) and one section per ISO/IEC 27001:2022 Annex A
control with its figures, a reproducible random sample with inclusion
proofs, and the exceptions. Every figure in the JSON carries its query.
The format follows --out's extension unless --format is given.
See docs/report.md.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runReport(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	f.register(cmd)
	cmd.Flags().StringVar(&f.format, "format", "", "html, pdf or json (default: from --out's extension, else html)")
	return cmd
}

// newEvidenceCmd is `warden evidence export`: the report's evidence
// bundle, verifiable offline with `warden verify --bundle`.
func newEvidenceCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "evidence", Short: "Evidence bundles for auditors"}
	var f reportFlags
	export := &cobra.Command{
		Use:   "export --from T1 --to T2 --out bundle.tar.gz",
		Short: "Write the evidence bundle of a period: entries, checkpoints, proofs, keys, the report in three formats, a manifest",
		Long: `Export writes a tar.gz an auditor verifies offline with
'warden verify --bundle FILE --key audit.verifier': the canonical entries
of the segment of the log covering the period, the signed checkpoints and
their witness cosignatures, the consistency and inclusion proofs, the
verifier keys, the policy versions (and --policy files), the response and
recording digests, the report in JSON, HTML and PDF, and a manifest with
the SHA-256 of every file. --with-recordings adds the session recordings
the period's terminal entries name, decrypted (their SHA-256 is the digest
in the signed entry), and lists erased ones with who erased them and why.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runEvidenceExport(cmd.Context(), f, cmd.OutOrStdout())
		},
	}
	f.register(export)
	export.Flags().DurationVar(&f.wait, "wait", 30*time.Second, "wait this long for a checkpoint to cover the period's newest entries")
	export.Flags().StringArrayVar(&f.policies, "policy", nil, "policy file to include (default <data-dir>/policy.yaml if present; repeatable)")
	export.Flags().BoolVar(&f.withRecordings, "with-recordings", false, "bundle the recordings the period's terminal entries name, decrypted to their canonical form (checked offline against the digest in each signed entry); erased ones are listed with their erasure (the store of --config, else under --data-dir)")
	cmd.AddCommand(export)
	return cmd
}

// parseWhen accepts RFC 3339, a UTC date, "now", "today", "tomorrow"
// (UTC midnights) or a signed duration from now ("-24h").
func parseWhen(flag, s string) (time.Time, error) {
	now := time.Now().UTC()
	switch s {
	case "now":
		return now, nil
	case "today":
		return now.Truncate(24 * time.Hour), nil
	case "tomorrow":
		return now.Truncate(24 * time.Hour).Add(24 * time.Hour), nil
	}
	if t, err := time.Parse(time.RFC3339Nano, s); err == nil {
		return t.UTC(), nil
	}
	if t, err := time.Parse(time.DateOnly, s); err == nil {
		return t, nil
	}
	if d, err := time.ParseDuration(s); err == nil && (strings.HasPrefix(s, "-") || strings.HasPrefix(s, "+")) {
		return now.Add(d), nil
	}
	return time.Time{}, fmt.Errorf("--%s %q: want RFC 3339 (2026-11-01T00:00:00Z), a date (2026-11-01), now, today, tomorrow or a signed duration (-24h)", flag, s)
}

// generateReport opens the store read-only and runs the generator.
func generateReport(ctx context.Context, f reportFlags) (*report.Result, string, func(), error) {
	if ctx == nil {
		ctx = context.Background()
	}
	usage := func(err error) (*report.Result, string, func(), error) {
		return nil, "", nil, &exitError{code: 2, err: err}
	}
	from, err := parseWhen("from", f.from)
	if err != nil {
		return usage(err)
	}
	to, err := parseWhen("to", f.to)
	if err != nil {
		return usage(err)
	}
	if !from.Before(to) {
		return usage(fmt.Errorf("the period is empty: --from %s is not before --to %s", from.Format(time.RFC3339), to.Format(time.RFC3339)))
	}
	keyPath := f.key
	if keyPath == "" {
		_, keyPath = audit.KeyPaths(f.dataDir)
	}
	v, err := audit.LoadVerifier(keyPath)
	if err != nil {
		return usage(err)
	}
	vkey, err := os.ReadFile(keyPath)
	if err != nil {
		return usage(err)
	}
	o := report.Options{Verifier: v, Period: report.Period{From: from, To: to}, Seed: f.seed, GeneratedBy: "warden report (" + whoami() + ")"}
	var closers []func()
	closeAll := func() {
		for _, c := range closers {
			c()
		}
	}
	if f.dsn != "" {
		s, err := postgres.Open(ctx, f.dsn)
		if err != nil {
			return usage(err)
		}
		closers = append(closers, func() { s.Close() })
		o.Store, o.Cosignatures = s, s
	} else {
		db := f.db
		if db == "" {
			db = filepath.Join(f.dataDir, "audit.db")
		}
		s, err := sqlite.OpenReadOnly(ctx, db)
		if err != nil {
			return usage(err)
		}
		closers = append(closers, func() { s.Close() })
		o.Store, o.SingleWriter = s, true
		cpFile := f.checkpointFile
		if cpFile == "" {
			cpFile = filepath.Join(f.dataDir, "audit.checkpoint")
		}
		if o.External, err = os.ReadFile(cpFile); err != nil && (f.checkpointFile != "" || !errors.Is(err, os.ErrNotExist)) {
			closeAll()
			return usage(err)
		}
		csPath := f.cosignatureDB
		if csPath == "" {
			csPath = filepath.Join(f.dataDir, "cosignatures.db")
		}
		cs, err := sqlite.OpenCosignaturesReadOnly(ctx, csPath)
		switch {
		case err == nil:
			closers = append(closers, func() { cs.Close() })
			o.Cosignatures = cs
		case f.cosignatureDB != "" || !errors.Is(err, os.ErrNotExist):
			closeAll()
			return usage(err)
		}
	}
	if len(f.witnesses) > 0 {
		if o.Witnesses, err = loadWitnessKeys(f.witnesses); err != nil {
			closeAll()
			return usage(err)
		}
	}
	if f.configFile != "" {
		cfg, err := config.Load(f.configFile)
		if err != nil {
			closeAll()
			return usage(err)
		}
		o.Upstreams = map[string]string{}
		for _, r := range cfg.Routes {
			o.Upstreams[r.Name] = r.Upstream
		}
	}
	res, err := report.Generate(ctx, o)
	if err != nil {
		closeAll()
		return nil, "", nil, &exitError{code: 2, err: err}
	}
	return res, string(vkey), closeAll, nil
}

func whoami() string {
	name := "unknown"
	if u, err := user.Current(); err == nil {
		name = u.Username
	}
	host, _ := os.Hostname()
	return name + "@" + host
}

func runReport(ctx context.Context, f reportFlags, stdout io.Writer) error {
	format := f.format
	if format == "" {
		switch strings.ToLower(filepath.Ext(f.out)) {
		case ".pdf":
			format = "pdf"
		case ".json":
			format = "json"
		default:
			format = "html"
		}
	}
	write := map[string]func(io.Writer, *report.Report) error{"html": report.WriteHTML, "pdf": report.WritePDF, "json": report.WriteJSON}[format]
	if write == nil {
		return &exitError{code: 2, err: fmt.Errorf("--format %q: want html, pdf or json", format)}
	}
	res, _, done, err := generateReport(ctx, f)
	if err != nil {
		return err
	}
	defer done()
	if err := writeFileWith(f.out, func(w io.Writer) error { return write(w, res.Report) }); err != nil {
		return &exitError{code: 2, err: err}
	}
	printCover(stdout, res.Report)
	fmt.Fprintf(stdout, "wrote %s (%s)\n", f.out, format)
	if !res.Report.Cover.Verification.OK {
		return &exitError{code: 1, err: fmt.Errorf("the audit log does not verify: the report says so on its cover")}
	}
	return nil
}

func runEvidenceExport(ctx context.Context, f reportFlags, stdout io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	// The period's newest entries may wait for their checkpoint (at most
	// checkpoint_interval): generate again until one covers them.
	deadline := time.Now().Add(f.wait)
	for {
		res, vkey, done, err := generateReport(ctx, f)
		if err != nil {
			return err
		}
		err = exportBundle(ctx, f, res, vkey, stdout)
		done()
		if !errors.Is(err, report.ErrUnsigned) || time.Now().After(deadline) {
			return err
		}
		time.Sleep(time.Second)
	}
}

func exportBundle(ctx context.Context, f reportFlags, res *report.Result, vkey string, stdout io.Writer) error {
	o := report.BundleOptions{VerifierKey: vkey, Policies: map[string][]byte{}}
	for _, w := range f.witnesses {
		if _, err := witness.NewVerifier(w); err == nil {
			o.WitnessKeys = append(o.WitnessKeys, w)
		} else if b, err := os.ReadFile(w); err == nil {
			o.WitnessKeys = append(o.WitnessKeys, strings.TrimSpace(string(b)))
		}
	}
	pols := f.policies
	if len(pols) == 0 {
		if p := filepath.Join(f.dataDir, "policy.yaml"); fileExists(p) {
			pols = []string{p}
		}
	}
	for _, p := range pols {
		b, err := os.ReadFile(p)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o.Policies[filepath.Base(p)] = b
	}
	if f.withRecordings {
		src, done, err := openRecordingSource(ctx, f)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		defer done()
		o.Recordings = src
	}
	if err := writeFileWith(f.out, func(w io.Writer) error { return report.WriteBundle(ctx, w, res, o) }); err != nil {
		if errors.Is(err, report.ErrUnsigned) {
			return err
		}
		return &exitError{code: 1, err: err}
	}
	printCover(stdout, res.Report)
	fmt.Fprintf(stdout, "wrote evidence bundle %s; verify it offline with: warden verify --bundle %s --key audit.verifier\n", f.out, f.out)
	return nil
}

func fileExists(p string) bool {
	_, err := os.Stat(p)
	return err == nil
}

// writeFileWith writes a new file through fn, removing it on failure.
func writeFileWith(path string, fn func(io.Writer) error) error {
	out, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if err := fn(out); err != nil {
		out.Close()
		os.Remove(path)
		return err
	}
	if err := out.Sync(); err != nil {
		out.Close()
		return err
	}
	return out.Close()
}

func printCover(w io.Writer, r *report.Report) {
	cv := r.Cover
	fmt.Fprintf(w, "period %s to %s: %d entries (segment [%d, %d)), sample seed %d\n",
		cv.Period.From.Format(time.RFC3339), cv.Period.To.Format(time.RFC3339), cv.PeriodEntries, cv.Segment.From, cv.Segment.To, cv.Seed)
	fmt.Fprintf(w, "verification: %s\n", cv.Verification.Summary)
}

// verifyBundleFile is `warden verify --bundle FILE`: offline, no store.
func verifyBundleFile(ctx context.Context, f verifyFlags, stdout, stderr io.Writer) error {
	if ctx == nil {
		ctx = context.Background()
	}
	var o report.BundleVerifyOptions
	if f.key != "" {
		v, err := audit.LoadVerifier(f.key)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o.Verifier = v
	}
	if len(f.witnesses) > 0 {
		ws, err := loadWitnessKeys(f.witnesses)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		o.Witnesses, o.MinWitnesses = ws, f.minWitnesses
	}
	fh, err := os.Open(f.bundle)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer fh.Close()
	res, err := report.VerifyBundle(ctx, fh, o)
	var be *report.BundleError
	if errors.As(err, &be) {
		fmt.Fprintf(stdout, "FAILED: %s\n", be.Msg)
		return &exitError{code: 1, err: fmt.Errorf("evidence bundle does not verify")}
	}
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if res.UsedBundledKey {
		fmt.Fprintln(stderr, "warning: no --key given: checked against the bundle's own verifier key, which proves the bundle is consistent, not who signed it; pass the key you obtained out of band")
	}
	rate := 0.0
	if s := res.Elapsed.Seconds(); s > 0 {
		rate = float64(res.Entries) / s
	}
	fmt.Fprintf(stdout, "bundle for %s to %s: %d entries recomputed into %d signed checkpoints, %d proofs checked, %d figures recomputed from the %d entries of the period in %s (%.0f entries/s)\n",
		res.Period.From.Format(time.RFC3339), res.Period.To.Format(time.RFC3339), res.Entries, res.Checkpoints, res.Proofs, res.Figures, res.PeriodEntries, res.Elapsed.Round(time.Millisecond), rate)
	if len(res.Cosigned) > 0 {
		fmt.Fprintf(stdout, "cosigned by %s\n", strings.Join(res.Cosigned, ", "))
	}
	if res.Recordings >= 0 {
		fmt.Fprintf(stdout, "%d recordings checked against the digests in their signed terminal entries\n", res.Recordings)
	} else {
		fmt.Fprintln(stdout, "recordings: not bundled (exported without --with-recordings)")
	}
	fmt.Fprintln(stdout, "OK")
	return nil
}
