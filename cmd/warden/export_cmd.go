package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/export"
)

// newExportCmd is `warden export status`: each SIEM sink's cursor and
// lag, read from the admin API (auditor role). The token comes from
// --token or WARDEN_TOKEN and is never printed.
func newExportCmd() *cobra.Command {
	var adminURL, token string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Inspect the SIEM export (see docs/export.md)",
	}
	cmd.PersistentFlags().StringVar(&adminURL, "admin-url", "http://127.0.0.1:9090", "admin listener URL")
	cmd.PersistentFlags().StringVar(&token, "token", "", "bearer token of an auditor (default: $WARDEN_TOKEN)")
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	status := &cobra.Command{
		Use:   "status",
		Short: "Show each export sink's cursor, lag and delivery counters",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			t := token
			if t == "" {
				t = os.Getenv("WARDEN_TOKEN")
			}
			if t == "" {
				return errors.New("a token is required: --token or WARDEN_TOKEN")
			}
			c := &admin.Client{BaseURL: adminURL, Token: t}
			var rep export.Report
			if err := c.Do(cmd.Context(), "GET", "/v1/export/status", nil, &rep); err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), rep)
			}
			printExportReport(cmd.OutOrStdout(), rep)
			return nil
		},
	}
	cmd.AddCommand(status)
	return cmd
}

func printExportReport(w io.Writer, rep export.Report) {
	state := "not exporting on this replica (another replica holds the export lease, or it is starting)"
	if rep.Exporting {
		state = "exporting since " + rep.Since.UTC().Format(time.RFC3339)
	}
	fmt.Fprintf(w, "log size: %d entries; %s\n", rep.LogSize, state)
	if rep.Error != "" {
		fmt.Fprintf(w, "last error: %s\n", rep.Error)
	}
	tw := tabwriter.NewWriter(w, 0, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "SINK\tCURSOR\tLAG\tLAG(S)\tDELIVERED\tFAILED\tDEAD-LETTERED\tLAST ERROR")
	for _, s := range rep.Sinks {
		fmt.Fprintf(tw, "%s\t%d\t%d\t%.1f\t%d\t%d\t%d\t%s\n", s.Sink, s.Cursor, s.LagEntries, s.LagSeconds, s.Delivered, s.Failed, s.DeadLettered, s.LastError)
	}
	tw.Flush()
}
