package policy_test

import (
	"fmt"

	"github.com/wardenhq/warden/internal/identity"
	"github.com/wardenhq/warden/internal/policy"
)

func Example() {
	p, err := policy.Load("policy.yaml", []byte(`
version: 1
rules:
  - name: chat-approved-models
    when: >
      principal.in_group("ml-users") &&
      request.path == "/v1/chat/completions" &&
      has(body.model) && body.model in ["warden-demo-small"]
    action: allow
    mask: default
`))
	if err != nil {
		fmt.Println(err)
		return
	}
	alice := &identity.Principal{Subject: "alice", Kind: identity.KindUser, Groups: []string{"ml-users"}}
	for _, model := range []string{"warden-demo-small", "gpt-x"} {
		d := p.Decide(&policy.Input{
			Principal: alice,
			Request:   policy.Request{Method: "POST", Path: "/v1/chat/completions"},
			Route:     policy.Route{Name: "openai", Profile: "openai"},
			Body:      policy.BodyFacts([]byte(`{"model":"` + model + `"}`)),
		})
		fmt.Println(model, d.Action, d.Rule, d.Mask)
	}
	// Output:
	// warden-demo-small allow chat-approved-models default
	// gpt-x deny default-deny
}

func ExampleLoad_error() {
	_, err := policy.Load("policy.yaml", []byte(`version: 1
rules:
  - name: typo
    when: principal.grups.exists(g, g == "ml-users")
    action: allow
`))
	fmt.Println(err)
	// Output:
	// policy.yaml:4:20: rule[0] "typo": when: undefined field 'grups' (expression 1:10)
}
