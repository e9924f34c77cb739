package main

import (
	"fmt"
	"io"
	"strings"
)

// demoStep is one copy-paste example printed by `warden demo`. Lines
// starting with "$ " are commands; the end-to-end test runs them verbatim,
// in order, in one shell.
type demoStep struct {
	title string
	cmds  []string
	note  string
}

func demoSteps(st demoStack) []demoStep {
	gw := st.gatewayURL
	chat := `'{"model":"warden-demo-small","messages":[{"role":"user","content":"Show me the customer record"}]}'`
	chatStream := `'{"model":"warden-demo-small","stream":true,"messages":[{"role":"user","content":"Show me the customer record"}]}'`
	return []demoStep{
		{
			title: "A chat completion through the gateway",
			cmds:  []string{`curl -s ` + gw + `/v1/chat/completions -H 'Content-Type: application/json' -d ` + chat},
		},
		{
			title: "The same, streamed (server-sent events, flushed as they arrive)",
			cmds:  []string{`curl -sN ` + gw + `/v1/chat/completions -H 'Content-Type: application/json' -d ` + chatStream},
		},
		{
			title: "Ambiguous paths are refused with a JSON error (400), never guessed",
			cmds:  []string{`curl -s '` + gw + `/v1/chat%2Fcompletions'`},
		},
		{
			title: "Health, readiness and Prometheus metrics on the admin listener",
			cmds:  []string{`curl -s ` + st.adminURL + `/readyz`, `curl -s ` + st.adminURL + `/metrics | grep '^warden_requests_total'`},
		},
	}
}

func printDemo(w io.Writer, st demoStack) {
	fmt.Fprintf(w, `
Warden demo is running (Ctrl-C to stop).

  gateway      %s   <- point your OpenAI client here
  admin        %s   (/healthz /readyz /metrics)
  demo issuer  %s   (OIDC discovery at /.well-known/openid-configuration)
  demo model   %s   (the upstream; in production only Warden can reach it)

Try it — copy and paste:
`, st.gatewayURL, st.adminURL, st.issuerURL, st.modelURL)
	for i, s := range demoSteps(st) {
		fmt.Fprintf(w, "\n# %d. %s\n", i+1, s.title)
		for _, c := range s.cmds {
			fmt.Fprintf(w, "$ %s\n", c)
		}
		if s.note != "" {
			fmt.Fprintf(w, "#    %s\n", strings.ReplaceAll(s.note, "\n", "\n#    "))
		}
	}
	fmt.Fprintln(w, "\nCtrl-C stops the demo.")
}
