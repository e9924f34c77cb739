package main

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/identity"
)

// newKeysCmd is `warden keys create|list|revoke`: service account API keys,
// operating directly on <data dir>/apikeys.json. A running gateway picks
// up changes within about a second.
func newKeysCmd() *cobra.Command {
	var dataDir, file string
	cmd := &cobra.Command{
		Use:   "keys",
		Short: "Manage service account API keys (create, list, revoke)",
	}
	cmd.PersistentFlags().StringVar(&dataDir, "data-dir", "./warden-data", "data directory holding apikeys.json")
	cmd.PersistentFlags().StringVar(&file, "file", "", "key store file (default <data-dir>/apikeys.json)")
	// open opens the key store. existing (list, revoke) refuses a data dir
	// that does not exist: a mistyped --data-dir must not look like a
	// gateway without keys. create may start a store in a new dir.
	open := func(existing bool) (*identity.FileKeyStore, error) {
		p := file
		if p == "" {
			p = filepath.Join(dataDir, identity.DefaultAPIKeyFile)
		}
		if existing {
			dir := filepath.Dir(p)
			if fi, err := os.Stat(dir); err != nil || !fi.IsDir() {
				return nil, fmt.Errorf("no key store at %s: directory %s does not exist (check --data-dir or --file)", p, dir)
			}
		}
		return identity.OpenFileKeyStore(p)
	}

	var name, groups string
	var expires time.Duration
	create := &cobra.Command{
		Use:   "create --name NAME [--groups a,b] [--expires 720h]",
		Short: "Create a key; the key is printed once and cannot be shown again",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open(false)
			if err != nil {
				return err
			}
			var gs []string
			for _, g := range strings.Split(groups, ",") {
				if g = strings.TrimSpace(g); g != "" {
					gs = append(gs, g)
				}
			}
			plain, rec, err := s.Create(name, gs, expires)
			if err != nil {
				return err
			}
			out := cmd.OutOrStdout()
			fmt.Fprintln(out, plain)
			fmt.Fprintf(cmd.ErrOrStderr(), "created key %s for svc:%s (groups %s, expires %s); store it now, it is not shown again\n",
				rec.ID, rec.Name, strings.Join(rec.Groups, ","), fmtTime(rec.ExpiresAt, "never"))
			return nil
		},
	}
	create.Flags().StringVar(&name, "name", "", "service account name (principal svc:<name>)")
	create.Flags().StringVar(&groups, "groups", "", "comma-separated groups")
	create.Flags().DurationVar(&expires, "expires", 0, "lifetime, e.g. 720h (0: never expires)")
	_ = create.MarkFlagRequired("name")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List keys (never the keys themselves)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := open(true)
			if err != nil {
				return err
			}
			keys, err := s.List()
			if err != nil {
				return err
			}
			now := time.Now()
			if asJSON {
				type row struct {
					identity.APIKey
					Hash  string `json:"hash,omitempty"`
					State string `json:"state"`
				}
				rows := make([]row, len(keys))
				for i, k := range keys {
					rows[i] = row{APIKey: k, State: k.State(now)}
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(rows)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tNAME\tGROUPS\tSTATE\tCREATED\tEXPIRES\tLAST USED")
			for _, k := range keys {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", k.ID, k.Name, strings.Join(k.Groups, ","), k.State(now),
					fmtTime(k.CreatedAt, "-"), fmtTime(k.ExpiresAt, "never"), fmtTime(k.LastUsedAt, "never"))
			}
			return tw.Flush()
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	revoke := &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke a key (takes effect in a running gateway within about a second)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			s, err := open(true)
			if err != nil {
				return err
			}
			if err := s.Revoke(args[0]); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "revoked %s\n", args[0])
			return nil
		},
	}
	cmd.AddCommand(create, list, revoke)
	return cmd
}

func fmtTime(t time.Time, zero string) string {
	if t.IsZero() {
		return zero
	}
	return t.UTC().Format(time.RFC3339)
}
