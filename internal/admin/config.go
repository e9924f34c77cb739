package admin

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/wardenhq/warden/internal/config/field"
	"github.com/wardenhq/warden/internal/console"
)

// Config is the `admin:` section: which groups hold which role on the
// admin API.
//
//	admin:
//	  roles:
//	    auditor: [ml-admins, auditors]   # read the audit log and the policy history
//	    approver: [ml-approvers]         # approve or deny (besides being a reviewer of the request)
//	    admin: [ml-admins]               # change the gateway: policy reload, API keys
type Config struct {
	// Roles maps each role to the groups that hold it.
	Roles Roles `yaml:"roles"`
	// Console configures the web console's browser login (off unless
	// console.issuer is set).
	Console console.Config `yaml:"console"`

	// AuditorGroups is the former name of Roles.Auditor. Deprecated: it
	// still works (with a warning at start-up) unless roles.auditor says
	// something else.
	AuditorGroups []string `yaml:"auditor_groups"`
	// AdminGroups is the former name of Roles.Admin. Deprecated, as
	// AuditorGroups.
	AdminGroups []string `yaml:"admin_groups"`
}

// Roles lists, per role, the groups whose members hold it. A caller
// holds a role when one of their groups is listed; an empty list gives
// the role to nobody. Roles do not imply each other: list a group under
// every role it should hold.
type Roles struct {
	// Auditor may read the audit log (search, entries, proofs,
	// checkpoints) and the policy in force and its history. Default
	// [ml-admins, auditors].
	Auditor []string `yaml:"auditor"`
	// Approver may approve and deny approval requests — on top of, never
	// instead of, being in one of the request's own reviewer groups (and
	// never for their own request). Default: unset, meaning no group
	// beyond the request's reviewer groups (the policy's approval
	// setting, frozen in the request) is needed.
	Approver []string `yaml:"approver"`
	// Admin may change the running gateway: reload the policy, create,
	// list and revoke API keys. Default [ml-admins].
	Admin []string `yaml:"admin"`
}

// SetDefaults moves the deprecated keys to their roles (when the role is
// not set) and fills the default groups.
func (c *Config) SetDefaults() {
	if c.Roles.Auditor == nil && c.AuditorGroups != nil {
		c.Roles.Auditor = slices.Clone(c.AuditorGroups)
	}
	if c.Roles.Admin == nil && c.AdminGroups != nil {
		c.Roles.Admin = slices.Clone(c.AdminGroups)
	}
	if c.Roles.Auditor == nil {
		c.Roles.Auditor = []string{"ml-admins", "auditors"}
	}
	if c.Roles.Admin == nil {
		c.Roles.Admin = []string{"ml-admins"}
	}
	if c.Console.Enabled() {
		c.Console.SetDefaults()
	}
}

// Validate checks the section (after SetDefaults). Errors are
// *field.Error values naming the key.
func (c *Config) Validate() error {
	var errs []error
	for _, d := range []struct {
		old, role string
		was, now  []string
	}{{"auditor_groups", "auditor", c.AuditorGroups, c.Roles.Auditor}, {"admin_groups", "admin", c.AdminGroups, c.Roles.Admin}} {
		if d.was != nil && !slices.Equal(d.was, d.now) {
			errs = append(errs, field.Errorf(d.old, "is the deprecated name of roles.%s, which says something else; keep only roles.%s", d.role, d.role))
		}
	}
	for role, groups := range map[string][]string{"auditor": c.Roles.Auditor, "approver": c.Roles.Approver, "admin": c.Roles.Admin} {
		for i, g := range groups {
			if strings.TrimSpace(g) == "" {
				errs = append(errs, field.Errorf(fmt.Sprintf("roles.%s[%d]", role, i), "must be a group name, not empty"))
			}
		}
	}
	if c.Console.Enabled() && c.Console.PublicURL == "" {
		errs = append(errs, field.Errorf("console.public_url", "is required with console.issuer: the login redirect goes there"))
	}
	return errors.Join(errs...)
}

// Deprecations returns a warning for each deprecated key in use, to log
// at start-up.
func (c *Config) Deprecations() []string {
	var out []string
	if c.AuditorGroups != nil {
		out = append(out, "admin.auditor_groups is deprecated: rename it to admin.roles.auditor")
	}
	if c.AdminGroups != nil {
		out = append(out, "admin.admin_groups is deprecated: rename it to admin.roles.admin")
	}
	return out
}
