package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/url"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/admin"
	"github.com/wardenhq/warden/internal/policy"
)

// newApprovalsCmd is `warden approvals list|show|approve|deny|cancel|
// revoke|request`, a thin client of the admin API (/v1/approvals,
// /v1/grants). The token comes from --token or WARDEN_TOKEN and is never
// printed.
func newApprovalsCmd() *cobra.Command {
	var af adminFlags
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "approvals",
		Short: "Review approval requests and just-in-time grants through the admin API",
	}
	af.register(cmd)
	cmd.PersistentFlags().BoolVar(&asJSON, "json", false, "print JSON")
	client := af.client
	show := func(w io.Writer, v *admin.View) error {
		if asJSON {
			return printJSON(w, v)
		}
		printView(w, v)
		return nil
	}

	var state, requester, setting, kind string
	var idsOnly bool
	var wait time.Duration
	list := &cobra.Command{
		Use:   "list [--state pending] [--requester SUB] [--setting NAME] [--kind one_time|grant]",
		Short: "List the requests you made or may review, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			q := url.Values{}
			for k, v := range map[string]string{"state": state, "requester": requester, "setting": setting, "kind": kind} {
				if v != "" {
					q.Set(k, v)
				}
			}
			vs, err := c.ListApprovals(cmd.Context(), q)
			// --wait: poll until something matches (for scripts that
			// approve a request another process just made).
			for deadline := time.Now().Add(wait); err == nil && len(vs) == 0 && time.Now().Before(deadline); {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(200 * time.Millisecond):
				}
				vs, err = c.ListApprovals(cmd.Context(), q)
			}
			if err != nil {
				return err
			}
			if idsOnly {
				for _, v := range vs {
					fmt.Fprintln(cmd.OutOrStdout(), v.ID)
				}
				return nil
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), vs)
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "ID\tKIND\tSTATE\tSETTING\tREQUESTER\tAPPROVALS\tCREATED\tEXPIRES")
			for _, v := range vs {
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%d/%d\t%s\t%s\n", v.ID, v.Kind, v.State, v.SettingName, v.Requester.Subject,
					v.Approvals, v.Setting.MinApprovals, fmtTime(v.CreatedAt, "-"), fmtTime(v.ExpiresAt, "-"))
			}
			return tw.Flush()
		},
	}
	list.Flags().StringVar(&state, "state", "", "filter by state (pending, approved, denied, expired, cancelled, used, revoked)")
	list.Flags().StringVar(&requester, "requester", "", "filter by the requester's subject")
	list.Flags().StringVar(&setting, "setting", "", "filter by approval setting name")
	list.Flags().StringVar(&kind, "kind", "", "filter by kind (one_time or grant)")
	list.Flags().BoolVarP(&idsOnly, "quiet", "q", false, "print only the request ids")
	list.Flags().DurationVar(&wait, "wait", 0, "wait up to this long until at least one request matches")

	showCmd := &cobra.Command{
		Use:   "show ID",
		Short: "Show one request with its reviews",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			v, err := c.GetApproval(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return show(cmd.OutOrStdout(), v)
		},
	}

	act := func(use, short string, reasonRequired bool, do func(c *admin.Client, cmd *cobra.Command, id, reason string) (*admin.View, error)) *cobra.Command {
		var reason string
		c := &cobra.Command{
			Use:   use,
			Short: short,
			Args:  cobra.ExactArgs(1),
			RunE: func(cmd *cobra.Command, args []string) error {
				if reasonRequired && strings.TrimSpace(reason) == "" {
					return errors.New("--reason is required")
				}
				cl, err := client()
				if err != nil {
					return err
				}
				v, err := do(cl, cmd, args[0], reason)
				if err != nil {
					return err
				}
				return show(cmd.OutOrStdout(), v)
			},
		}
		c.Flags().StringVar(&reason, "reason", "", "reason, recorded in the audit log")
		return c
	}
	approve := act("approve ID --reason TEXT", "Approve a request (not your own)", true, func(c *admin.Client, cmd *cobra.Command, id, r string) (*admin.View, error) {
		return c.Approve(cmd.Context(), id, r)
	})
	deny := act("deny ID --reason TEXT", "Deny a request; one deny decides", true, func(c *admin.Client, cmd *cobra.Command, id, r string) (*admin.View, error) {
		return c.Deny(cmd.Context(), id, r)
	})
	cancel := act("cancel ID [--reason TEXT]", "Withdraw your own pending request", false, func(c *admin.Client, cmd *cobra.Command, id, r string) (*admin.View, error) {
		return c.Cancel(cmd.Context(), id, r)
	})
	revoke := act("revoke ID --reason TEXT", "Revoke an active grant (its holder or a reviewer)", true, func(c *admin.Client, cmd *cobra.Command, id, r string) (*admin.View, error) {
		return c.Revoke(cmd.Context(), id, r)
	})

	var reqSetting, justification, duration string
	var routes, models, paths []string
	request := &cobra.Command{
		Use:   "request --setting NAME --justification TEXT [--duration 30m] [--route R] [--model M] [--path P]",
		Short: "Request a just-in-time grant",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := client()
			if err != nil {
				return err
			}
			b := admin.CreateBody{Setting: reqSetting, Justification: justification, Duration: duration}
			if len(routes)+len(models)+len(paths) > 0 {
				b.Scope = &policy.GrantScope{Routes: routes, Models: models, Paths: paths}
			}
			v, err := c.RequestGrant(cmd.Context(), b)
			if err != nil {
				return err
			}
			return show(cmd.OutOrStdout(), v)
		},
	}
	request.Flags().StringVar(&reqSetting, "setting", "", "approval setting name (kind grant) from the policy")
	request.Flags().StringVar(&justification, "justification", "", "why you need the grant (required)")
	request.Flags().StringVar(&duration, "duration", "", "shorter grant duration than the setting's, e.g. 30m")
	request.Flags().StringSliceVar(&routes, "route", nil, "narrow the scope to these routes")
	request.Flags().StringSliceVar(&models, "model", nil, "narrow the scope to these models")
	request.Flags().StringSliceVar(&paths, "path", nil, "narrow the scope to these paths")
	_ = request.MarkFlagRequired("setting")
	_ = request.MarkFlagRequired("justification")

	cmd.AddCommand(list, showCmd, approve, deny, cancel, revoke, request)
	return cmd
}

func printJSON(w io.Writer, v any) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

func printView(w io.Writer, v *admin.View) {
	fmt.Fprintf(w, "%s  %s %s  setting %s\n", v.ID, v.Kind, strings.ToUpper(string(v.State)), v.SettingName)
	fmt.Fprintf(w, "requester      %s (%s)\n", v.Requester.Subject, v.Requester.Issuer)
	fmt.Fprintf(w, "justification  %s\n", v.Justification)
	if b := v.Binding; b != nil {
		fmt.Fprintf(w, "request        %s %s route=%s model=%s body_sha256=%s\n", b.Method, b.Path, b.Route, b.Model, b.BodySHA256)
	}
	if s := v.Scope; s != nil {
		fmt.Fprintf(w, "scope          routes=%v models=%v paths=%v for %s\n", s.Routes, s.Models, s.Paths, v.GrantDuration)
	}
	fmt.Fprintf(w, "reviewers      %s (%d/%d approvals", strings.Join(v.Setting.Reviewers, ", "), v.Approvals, v.Setting.MinApprovals)
	if v.Setting.OnePerGroup {
		fmt.Fprint(w, ", one per group")
	}
	fmt.Fprintln(w, ")")
	fmt.Fprintf(w, "created        %s, expires %s\n", fmtTime(v.CreatedAt, "-"), fmtTime(v.ExpiresAt, "-"))
	for _, r := range v.Reviews {
		fmt.Fprintf(w, "review         %s by %s at %s: %s\n", r.Verdict, r.Reviewer.Subject, fmtTime(r.At, "-"), r.Reason)
	}
	if !v.ValidUntil.IsZero() {
		fmt.Fprintf(w, "valid          %s .. %s\n", fmtTime(v.ValidFrom, "-"), fmtTime(v.ValidUntil, "-"))
	}
	if v.UsedBy != "" {
		fmt.Fprintf(w, "used by        request %s at %s\n", v.UsedBy, fmtTime(v.UsedAt, "-"))
	}
	if v.Reason != "" {
		fmt.Fprintf(w, "reason         %s\n", v.Reason)
	}
	if v.ReviewURL != "" {
		fmt.Fprintf(w, "link           %s\n", v.ReviewURL)
	}
}
