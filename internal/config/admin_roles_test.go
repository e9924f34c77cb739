package config

import (
	"slices"
	"strings"
	"testing"
)

// TestAdminRoles: admin.roles with their defaults; the deprecated
// admin.auditor_groups / admin.admin_groups still work (with a warning
// to log) unless they contradict the role, which names the key and line.
func TestAdminRoles(t *testing.T) {
	cfg, err := Parse("w.yaml", []byte(validYAML))
	if err != nil {
		t.Fatal(err)
	}
	r := cfg.Admin.Roles
	if !slices.Equal(r.Auditor, []string{"ml-admins", "auditors"}) || !slices.Equal(r.Admin, []string{"ml-admins"}) || r.Approver != nil ||
		len(cfg.Admin.Deprecations()) != 0 {
		t.Fatalf("defaults: %+v", cfg.Admin)
	}
	cfg, err = Parse("w.yaml", []byte(validYAML+"admin:\n  roles:\n    auditor: [soc]\n    approver: [leads]\n    admin: []\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Admin.Roles; !slices.Equal(r.Auditor, []string{"soc"}) || !slices.Equal(r.Approver, []string{"leads"}) || r.Admin == nil || len(r.Admin) != 0 {
		t.Fatalf("roles: %+v (an empty list must give the role to nobody)", r)
	}
	cfg, err = Parse("w.yaml", []byte(validYAML+"admin:\n  auditor_groups: [soc]\n  admin_groups: [ops]\n"))
	if err != nil {
		t.Fatal(err)
	}
	if r := cfg.Admin.Roles; !slices.Equal(r.Auditor, []string{"soc"}) || !slices.Equal(r.Admin, []string{"ops"}) || len(cfg.Admin.Deprecations()) != 2 {
		t.Fatalf("deprecated keys: %+v %v", r, cfg.Admin.Deprecations())
	}
	for _, tc := range []struct{ yaml, want string }{
		{"admin:\n  auditor_groups: [soc]\n  roles:\n    auditor: [other]\n", "w.yaml:10:19: admin.auditor_groups: is the deprecated name of roles.auditor"},
		{"admin:\n  roles:\n    admin: [\"\"]\n", "admin.roles.admin[0]: must be a group name"},
		{"admin:\n  roles:\n    auditors: [x]\n", `unknown key "auditors"`},
	} {
		_, err := Parse("w.yaml", []byte(validYAML+tc.yaml))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%q: %v, want %q", tc.yaml, err, tc.want)
		}
	}
}
