// Package examples ships Warden's example configuration: the demo policy
// (policy.yaml) and its table tests (policy_test.yaml). The demo embeds
// the policy so `warden demo` works without files on disk.
package examples

import _ "embed"

// DemoPolicy is the demo policy file (policy.yaml): ml-users and ml-admins
// chat with approved models, embeddings for services and people,
// fine-tuning and bulk export need ml-approvers' approval, admin routes
// are for ml-admins only, everything else is denied.
//
//go:embed policy.yaml
var DemoPolicy []byte

// DemoPolicyName is the file name DemoPolicy was embedded from.
const DemoPolicyName = "policy.yaml"
