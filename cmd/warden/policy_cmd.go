package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"reflect"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

// newPolicyCmd is `warden policy test|explain|version`: offline tools for
// policy authors. The logic lives in internal/policy.
func newPolicyCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "policy",
		Short: "Test, explain and version policy files",
	}
	cmd.AddCommand(newPolicyTestCmd(), newPolicyExplainCmd(), newPolicyVersionCmd())
	return cmd
}

func newPolicyTestCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "test SUITE.yaml...",
		Short: "Run YAML policy table tests; exit 1 if any fails",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			failed, total := 0, 0
			for _, path := range args {
				res, err := policy.RunSuiteFile(path)
				if err != nil {
					return err
				}
				policy.WriteSuiteResult(cmd.OutOrStdout(), res)
				failed += res.Failed()
				total += len(res.Results)
			}
			if failed > 0 {
				return fmt.Errorf("policy test: %d of %d tests failed", failed, total)
			}
			return nil
		},
	}
}

func newPolicyVersionCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "version POLICY.yaml...",
		Short: "Print the content version (sha256) of policy files",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, path := range args {
				p, err := policy.LoadFile(path)
				if err != nil {
					return err
				}
				if len(args) == 1 {
					fmt.Fprintln(cmd.OutOrStdout(), p.Version())
				} else {
					fmt.Fprintf(cmd.OutOrStdout(), "%s  %s\n", p.Version(), path)
				}
			}
			return nil
		},
	}
}

func newPolicyExplainCmd() *cobra.Command {
	var (
		policyFile, principalJSON, method, path, host, body, bodyFile string
		routeName, routeProfile, now                                  string
		headers                                                       []string
		asJSON                                                        bool
	)
	cmd := &cobra.Command{
		Use:   "explain --policy FILE --principal-json JSON --method M --path P [--body JSON]",
		Short: "Show which rules match one request, and why",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			p, err := policy.LoadFile(policyFile)
			if err != nil {
				return err
			}
			in := &policy.Input{Route: policy.Route{Name: routeName, Profile: routeProfile}}
			if principalJSON != "" {
				pr, err := parsePrincipalJSON(principalJSON)
				if err != nil {
					return err
				}
				in.Principal = pr
			}
			u, err := url.Parse(path)
			if err != nil {
				return fmt.Errorf("--path: %w", err)
			}
			in.Request = policy.Request{Method: strings.ToUpper(method), Path: u.Path, Host: host}
			if q := u.Query(); len(q) > 0 {
				in.Request.Query = q
			}
			for _, h := range headers {
				k, v, ok := strings.Cut(h, ":")
				if !ok {
					return fmt.Errorf("--header %q: want name:value", h)
				}
				if in.Request.Headers == nil {
					in.Request.Headers = map[string]string{}
				}
				in.Request.Headers[strings.ToLower(strings.TrimSpace(k))] = strings.TrimSpace(v)
			}
			raw := []byte(body)
			if bodyFile != "" {
				if raw, err = os.ReadFile(bodyFile); err != nil {
					return err
				}
			}
			if len(raw) > 0 && routeProfile == "openai" {
				in.Body = policy.BodyFacts(raw)
			}
			if now != "" {
				if in.Now, err = time.Parse(time.RFC3339, now); err != nil {
					return fmt.Errorf("--now: %w", err)
				}
			}
			if asJSON {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(map[string]any{"version": p.Version(), "rules": p.Explain(in), "decision": p.Decide(in)})
			}
			policy.WriteExplain(cmd.OutOrStdout(), p, in)
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&policyFile, "policy", "", "policy file (required)")
	f.StringVar(&principalJSON, "principal-json", "", `principal as JSON, e.g. {"sub":"alice","kind":"user","groups":["ml-users"]}`)
	f.StringVar(&method, "method", "GET", "HTTP method")
	f.StringVar(&path, "path", "/", "request path, optionally with ?query")
	f.StringVar(&host, "host", "", "request host")
	f.StringArrayVar(&headers, "header", nil, "request header name:value (repeatable)")
	f.StringVar(&body, "body", "", "JSON request body")
	f.StringVar(&bodyFile, "body-file", "", "file holding the JSON request body")
	f.StringVar(&routeName, "route", "openai", "route name")
	f.StringVar(&routeProfile, "profile", "openai", "route profile (the body is parsed for openai)")
	f.StringVar(&now, "now", "", "decision time, RFC 3339 (default: now)")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("policy") //nolint:errcheck // flag exists
	return cmd
}

// parsePrincipalJSON decodes --principal-json strictly: an unknown key
// (a typo such as "group") would otherwise be dropped silently and the
// explanation would be about a different principal.
func parsePrincipalJSON(s string) (*identity.Principal, error) {
	dec := json.NewDecoder(strings.NewReader(s))
	dec.DisallowUnknownFields()
	var pr identity.Principal
	if err := dec.Decode(&pr); err != nil {
		msg := err.Error()
		if k, ok := strings.CutPrefix(msg, "json: unknown field "); ok {
			msg = fmt.Sprintf("unknown key %s (known: %s)", k, strings.Join(jsonKeys(reflect.TypeFor[identity.Principal]()), ", "))
		}
		return nil, fmt.Errorf("--principal-json: %s", msg)
	}
	if dec.More() {
		return nil, errors.New("--principal-json: more than one JSON value")
	}
	return &pr, nil
}

// jsonKeys lists the JSON keys of struct type t.
func jsonKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		f := t.Field(i)
		name, _, _ := strings.Cut(f.Tag.Get("json"), ",")
		if !f.IsExported() || name == "-" {
			continue
		}
		if name == "" {
			name = f.Name
		}
		keys = append(keys, name)
	}
	return keys
}
