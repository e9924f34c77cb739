package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/store/postgres"
	"github.com/wardenhq/warden/internal/store/sqlite"
)

type indexFlags struct{ dataDir, db, dsn string }

// newIndexCmd is `warden index check|rebuild`: the search index is
// derived from the audit log, so it can be compared with the log and
// rebuilt from it at any time, also while the gateway runs.
func newIndexCmd() *cobra.Command {
	var f indexFlags
	cmd := &cobra.Command{
		Use:   "index",
		Short: "Check the audit search index against the log, or rebuild it",
		Long: `The search index (copied columns, full-text index, mask-rule index) is
derived from the audit log; verification never trusts it. "check" rebuilds
it from the log aside and reports every difference (entries missing from
it, rows for entries the log does not hold, rows that were altered), and
exits 1 if there is any. "rebuild" replaces it with one built from the log.
Both read the log only; both may run while the gateway runs.`,
	}
	pf := cmd.PersistentFlags()
	pf.StringVar(&f.dataDir, "data-dir", "./warden-data", "data directory (audit.db, audit-index.db)")
	pf.StringVar(&f.db, "db", "", "SQLite audit store (default <data-dir>/audit.db; its index is <name>-index.db beside it)")
	pf.StringVar(&f.dsn, "dsn", "", "PostgreSQL audit store DSN (instead of SQLite)")
	cmd.AddCommand(&cobra.Command{
		Use:   "check",
		Short: "Compare the search index with the log; exit 1 on any difference",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIndex(cmd.Context(), f, cmd.OutOrStdout(), false)
		},
	}, &cobra.Command{
		Use:   "rebuild",
		Short: "Replace the search index with one built from the log",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return runIndex(cmd.Context(), f, cmd.OutOrStdout(), true)
		},
	})
	return cmd
}

// openIndexed opens the store read-only (SQLite) for index maintenance.
func openIndexed(ctx context.Context, f indexFlags) (audit.Store, error) {
	if f.dsn != "" {
		return postgres.Open(ctx, f.dsn)
	}
	db := f.db
	if db == "" {
		db = filepath.Join(f.dataDir, "audit.db")
	}
	return sqlite.OpenReadOnly(ctx, db)
}

func runIndex(ctx context.Context, f indexFlags, w io.Writer, rebuild bool) error {
	if ctx == nil {
		ctx = context.Background()
	}
	st, err := openIndexed(ctx, f)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	defer st.Close()
	im, ok := st.(audit.IndexMaintainer)
	if !ok {
		return &exitError{code: 2, err: errors.New("this store has no search index to maintain")}
	}
	if rebuild {
		n, err := im.RebuildIndex(ctx)
		if err != nil {
			return &exitError{code: 2, err: err}
		}
		fmt.Fprintf(w, "rebuilt the search index from the log: %d entries\n", n)
		return nil
	}
	differs, err := reportIndex(ctx, im, w)
	if err != nil {
		return &exitError{code: 2, err: err}
	}
	if differs {
		return &exitError{code: 1, err: errors.New("the search index differs from the log")}
	}
	fmt.Fprintln(w, "OK")
	return nil
}

// reportIndex checks the index and prints every difference; differs is
// true if there is any. A store without an index prints a note.
func reportIndex(ctx context.Context, im audit.IndexMaintainer, w io.Writer) (differs bool, err error) {
	rep, err := im.CheckIndex(ctx)
	if errors.Is(err, audit.ErrNotFound) {
		fmt.Fprintf(w, "search index: none yet (the gateway builds it; warden index rebuild)\n")
		return false, nil
	}
	if err != nil {
		return false, err
	}
	for _, d := range rep.Diffs {
		fmt.Fprintf(w, "search index: entry %d: %s %s: %s\n", d.Seq, d.Kind, d.Part, d.Detail)
	}
	lag := ""
	if rep.Indexed < rep.LogSize {
		lag = fmt.Sprintf(" (entries [%d, %d) not indexed yet: the gateway catches up)", rep.Indexed, rep.LogSize)
	}
	if len(rep.Diffs) > 0 {
		fmt.Fprintf(w, "search index: %d differences from the log's %d entries%s; searches may miss or misreport entries (not evidence: the log is; warden index rebuild replaces it)\n",
			len(rep.Diffs), rep.LogSize, lag)
		return true, nil
	}
	fmt.Fprintf(w, "search index: matches the log's %d entries%s\n", rep.LogSize, lag)
	return false, nil
}
