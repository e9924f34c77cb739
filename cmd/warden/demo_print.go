package main

import (
	"fmt"
	"io"
	"strings"
)

// demoStep is one copy-paste example printed by `warden demo`. Lines
// starting with "$ " are commands; the end-to-end test runs them verbatim,
// in order, in one shell (so variables set by one are there for the next).
type demoStep struct {
	title string
	cmds  []string
	note  string
}

// tokenCmd fetches an access token for a demo user with the standard
// OAuth2 client_credentials grant and keeps it in a shell variable.
func tokenCmd(st demoStack, user, variable string) string {
	return variable + `=$(curl -s -u ` + user + `:demo -d grant_type=client_credentials ` + st.issuerURL +
		`/token | sed -E 's/.*"access_token":"([^"]+)".*/\1/') && echo "` + user + `'s token: ${` + variable + `:0:24}..."`
}

func demoSteps(st demoStack) []demoStep {
	gw := st.gatewayURL
	chat := `'{"model":"warden-demo-small","messages":[{"role":"user","content":"Show me the customer record"}]}'`
	chatStream := `'{"model":"warden-demo-small","stream":true,"messages":[{"role":"user","content":"Show me the customer record"}]}'`
	json := ` -H 'Content-Type: application/json'`
	return []demoStep{
		{
			title: "Get access tokens from the demo identity provider (OAuth2 client_credentials; secret: demo)",
			cmds: []string{
				tokenCmd(st, "alice", "ALICE"),
				tokenCmd(st, "bob", "BOB"),
				tokenCmd(st, "carol", "CAROL"),
			},
			note: "alice is in ml-users, bob in ml-approvers, carol in ml-admins, indexer is a service in ml-services.",
		},
		{
			title: "No token, no inference: 401 with a precise RFC 6750 error",
			cmds:  []string{`curl -s -i ` + gw + `/v1/chat/completions` + json + ` -d ` + chat + ` | grep -iE '^(HTTP|www-authenticate)|error'`},
		},
		{
			title: "alice chats through the gateway (policy rule chat-approved-models allows it)",
			cmds:  []string{`curl -s ` + gw + `/v1/chat/completions -H "Authorization: Bearer $ALICE"` + json + ` -d ` + chat},
		},
		{
			title: "The same, streamed: events arrive as the model writes them (and are recorded, rule record: full)",
			cmds:  []string{`curl -sN -D "${TMPDIR:-/tmp}/warden-stream.headers" ` + gw + `/v1/chat/completions -H "Authorization: Bearer $ALICE"` + json + ` -d ` + chatStream},
		},
		{
			title: "Policy: an unapproved model is denied (403, with the rule that decided)",
			cmds:  []string{`curl -s ` + gw + `/v1/chat/completions -H "Authorization: Bearer $ALICE"` + json + ` -d '{"model":"gpt-4o","messages":[{"role":"user","content":"hi"}]}'`},
		},
		{
			title: "Policy: admin routes are for ml-admins only (alice 403, carol 200)",
			cmds: []string{
				`curl -s ` + gw + `/admin/stats -H "Authorization: Bearer $ALICE"`,
				`curl -s ` + gw + `/admin/stats -H "Authorization: Bearer $CAROL"`,
			},
		},
		{
			title: "Ambiguous paths are refused with a JSON error (400), never guessed",
			cmds:  []string{`curl -s '` + gw + `/v1/chat%2Fcompletions' -H "Authorization: Bearer $ALICE"`},
		},
		{
			title: "Fine-tuning needs an ml-approver: alice's job is held (connection kept open) until bob approves",
			cmds: []string{
				`curl -s ` + gw + `/v1/fine_tuning/jobs -H "Authorization: Bearer $ALICE" -H 'X-Warden-Justification: monthly retrain on Q3 tickets'` + json + ` -d '{"model":"warden-demo-small","training_file":"file-q3"}' > "${TMPDIR:-/tmp}/warden-finetune.json" &`,
				`APPROVAL=$(` + st.warden + ` approvals list --admin-url ` + st.adminURL + ` --token "$BOB" --state pending --setting finetune --wait 30s -q | head -1) && echo "pending approval: $APPROVAL"`,
				st.warden + ` approvals approve "$APPROVAL" --admin-url ` + st.adminURL + ` --token "$BOB" --reason "training file reviewed"`,
				`wait; cat "${TMPDIR:-/tmp}/warden-finetune.json"`,
			},
			note: "alice cannot approve her own request, whatever her groups; bob's reason is recorded.",
		},
		{
			title: "The approval chain in the audit log: requested, approved, used, and the job it allowed",
			cmds:  []string{`curl -s '` + st.adminURL + `/v1/audit/entries?approval_id='"$APPROVAL" -H "Authorization: Bearer $CAROL" | grep -oE '"kind":"[a-z._]+"' | sort | uniq -c`},
		},
		{
			title: "Bulk export needs a time-boxed grant: the first call gets 202 with an approval id to retry under",
			cmds:  []string{`curl -s -i -X POST ` + gw + `/v1/exports -H "Authorization: Bearer $ALICE"` + json + ` -d '{"dataset":"customers"}' | grep -iE '^(HTTP|retry-after)|approval_id'`},
		},
		{
			title: "The audit log through the admin API (carol is in ml-admins): alice's denied call, with rule and policy version",
			cmds:  []string{`curl -s '` + st.adminURL + `/v1/audit/entries?kind=request.denied&principal=alice&limit=1' -H "Authorization: Bearer $CAROL"`},
		},
		{
			title: "Every call above is in the tamper-evident audit log: verify it offline",
			cmds:  []string{st.warden + ` verify --data-dir ` + st.dataDir},
		},
		{
			title: "Health, readiness and Prometheus metrics on the admin listener",
			cmds:  []string{`curl -s ` + st.adminURL + `/readyz`, `curl -s ` + st.adminURL + `/metrics | grep '^warden_requests_total'`},
		},
		{
			title: "The ISO 27001 evidence report of today's traffic, and its evidence bundle verified offline",
			cmds: []string{
				st.warden + ` evidence export --data-dir ` + st.dataDir + ` --from today --to tomorrow --out warden-evidence.tar.gz`,
				st.warden + ` report --data-dir ` + st.dataDir + ` --from today --to tomorrow --out warden-report.html`,
				st.warden + ` verify --bundle warden-evidence.tar.gz --key ` + st.dataDir + `/keys/audit.verifier`,
			},
			note: "Open warden-report.html in a browser (or --out warden-report.pdf); every figure in it is recomputed from the signed entries by the last command.",
		},
		{
			title: "Replay alice's masked chat stream from its recording, with its original timing, verified against the audit log",
			cmds: []string{
				`STREAM_ID=$(tr -d '\r' < "${TMPDIR:-/tmp}/warden-stream.headers" | awk 'tolower($1)=="x-request-id:" {print $2}') && echo "request $STREAM_ID"`,
				st.warden + ` replay "$STREAM_ID" --verify --admin-url ` + st.adminURL + ` --token "$CAROL" --data-dir ` + st.dataDir,
				`echo "replay it in the console: ` + st.adminURL + `/ui/request/$STREAM_ID"`,
			},
			note: "carol holds the auditor role. --verify recomputes the recording's digest, finds it in the request's\nterminal audit entry and checks that entry's inclusion proof against the signed checkpoint.\nThe console's request page shows the same verification and plays the stream in the browser (1x, 4x, max).",
		},
	}
}

func printDemo(w io.Writer, st demoStack) {
	fmt.Fprintf(w, `
Warden demo is running (Ctrl-C to stop).

  gateway      %s   <- point your OpenAI client here
  admin        %s   (/healthz /readyz /metrics, admin API)
  console      %s/ui/   (web console: log in as bob or carol on the demo issuer's user picker)
  demo issuer  %s   (OIDC discovery at /.well-known/openid-configuration)
  demo model   %s   (the upstream; in production only Warden can reach it)
  data         %s
  policy       %s   (edit it: Warden reloads it live)

Try it — copy and paste:
`, st.gatewayURL, st.adminURL, st.adminURL, st.issuerURL, st.modelURL, st.dataDir, st.policyFile)
	for i, s := range demoSteps(st) {
		fmt.Fprintf(w, "\n# %d. %s\n", i+1, s.title)
		if s.note != "" {
			fmt.Fprintf(w, "#    %s\n", strings.ReplaceAll(s.note, "\n", "\n#    "))
		}
		for _, c := range s.cmds {
			fmt.Fprintf(w, "$ %s\n", c)
		}
	}
	fmt.Fprintln(w, "\nCtrl-C stops the demo.")
}
