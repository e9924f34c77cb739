package ocsfschema_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/wardenhq/warden/internal/export/ocsfschema"
)

func schema(t *testing.T) *ocsfschema.Schema {
	t.Helper()
	d := os.Getenv("WARDEN_OCSF_SCHEMA")
	if d == "" {
		d = filepath.Join("..", "..", "..", "..", "shared", "ocsf-schema-1.8.0")
	}
	if _, err := os.Stat(filepath.Join(d, "dictionary.json")); err != nil {
		t.Skipf("OCSF 1.8 schema not found at %s (it ships in the project's shared folder); skipping", d)
	}
	s, err := ocsfschema.Load(d)
	if err != nil {
		t.Fatal(err)
	}
	return s
}

const valid = `{
 "activity_id":1,"activity_name":"Create","category_uid":6,"category_name":"Application Activity",
 "class_uid":6003,"class_name":"API Activity","type_uid":600301,"type_name":"API Activity: Create",
 "severity_id":1,"severity":"Informational","time":1764187200000,
 "metadata":{"version":"1.8.0","product":{"name":"Warden","vendor_name":"Warden"},"uid":"o/1","profiles":["security_control"]},
 "actor":{"user":{"uid":"alice","type_id":1,"type":"User","groups":[{"name":"staff"}]}},
 "api":{"operation":"/v1/chat","request":{"uid":"r1"}},
 "http_request":{"http_method":"POST","url":{"path":"/v1/chat"}},
 "src_endpoint":{"ip":"10.0.0.1","port":443},
 "disposition_id":1,"disposition":"Allowed","policy":{"name":"r"},
 "unmapped":{"anything":{"goes":[1,2]}}
}`

func TestValidEvent(t *testing.T) {
	s := schema(t)
	if err := s.Validate([]byte(valid)); err != nil {
		t.Fatalf("valid event refused: %v", err)
	}
}

// TestInvalidEvents: each change breaks one rule and must be refused
// with an error naming the attribute.
func TestInvalidEvents(t *testing.T) {
	s := schema(t)
	cases := []struct {
		name string
		edit func(m map[string]any)
		want string
	}{
		{"missing required attribute", func(m map[string]any) { delete(m, "api") }, "api: is required"},
		{"missing required nested attribute", func(m map[string]any) { delete(obj(m, "api"), "operation") }, "api.operation: is required"},
		{"missing metadata.product", func(m map[string]any) { delete(obj(m, "metadata"), "product") }, "metadata.product: is required"},
		{"time is a string", func(m map[string]any) { m["time"] = "2026-11-26" }, "time: must be an integer"},
		{"time is fractional", func(m map[string]any) { m["time"] = json.Number("1.5") }, "time: 1.5 is not an integer"},
		{"unknown enum value", func(m map[string]any) { m["disposition_id"] = json.Number("1000") }, "disposition_id: 1000 is not one of its enum values"},
		{"string enum", func(m map[string]any) { obj(m, "http_request")["http_method"] = "PROPFIND" }, `http_request.http_method: "PROPFIND" is not one of`},
		{"activity not of the class", func(m map[string]any) {
			m["activity_id"], m["type_uid"], m["activity_name"], m["type_name"] = json.Number("7"), json.Number("600307"), "x", "API Activity: x"
		}, "activity_id: 7 is not one of its enum values"},
		{"type_uid inconsistent", func(m map[string]any) { m["type_uid"] = json.Number("600302") }, "type_uid: is 600302"},
		{"category inconsistent", func(m map[string]any) { m["category_uid"] = json.Number("3") }, "category_uid: is 3"},
		{"unknown class", func(m map[string]any) { m["class_uid"] = json.Number("6999") }, "class_uid: 6999 is not a class"},
		{"class_name wrong", func(m map[string]any) { m["class_name"] = "Authentication" }, `class_name: is "Authentication"`},
		{"sibling caption wrong", func(m map[string]any) { m["disposition"] = "Blocked" }, `disposition: is "Blocked"`},
		{"activity_name wrong", func(m map[string]any) { m["activity_name"] = "Read" }, `activity_name: is "Read"`},
		{"other without a name", func(m map[string]any) {
			m["activity_id"], m["type_uid"], m["type_name"] = json.Number("99"), json.Number("600399"), "API Activity: "
			delete(m, "activity_name")
		}, "activity_name: must name the source's value"},
		{"unknown attribute", func(m map[string]any) { m["warden_extra"] = 1 }, "warden_extra: is not an attribute of api_activity"},
		{"unknown nested attribute", func(m map[string]any) { obj(m, "actor")["password"] = "x" }, "actor.password: is not an attribute of actor"},
		{"profile attribute without its profile", func(m map[string]any) { obj(m, "metadata")["profiles"] = []any{} }, `disposition_id: belongs to profile "security_control"`},
		{"unknown profile", func(m map[string]any) { obj(m, "metadata")["profiles"] = []any{"security_control", "nope"} }, `unknown profile "nope"`},
		{"at_least_one violated", func(m map[string]any) { m["actor"] = map[string]any{} }, "actor: needs at least one of"},
		{"array expected", func(m map[string]any) { obj(obj(m, "actor"), "user")["groups"] = map[string]any{"name": "x"} }, "actor.user.groups: must be an array"},
		{"object expected", func(m map[string]any) { m["api"] = "x" }, "api: must be a api object"},
		{"port out of range", func(m map[string]any) { obj(m, "src_endpoint")["port"] = json.Number("70000") }, "src_endpoint.port: 70000 is out of range"},
		{"ip malformed", func(m map[string]any) { obj(m, "src_endpoint")["ip"] = "not-an-ip" }, "src_endpoint.ip"},
		{"integer_t overflow", func(m map[string]any) { m["severity_id"] = json.Number("4294967297") }, "severity_id: 4294967297 is out of the 32-bit integer range"},
		{"null value", func(m map[string]any) { m["message"] = nil }, "message: is null"},
		{"boolean expected", func(m map[string]any) { obj(m, "policy")["is_applied"] = "yes" }, "policy.is_applied: must be a boolean"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			m := decode(t, valid)
			tc.edit(m)
			b, _ := json.Marshal(m)
			err := s.Validate(b)
			if err == nil {
				t.Fatalf("accepted: %s", b)
			}
			if !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("error %q does not contain %q", err, tc.want)
			}
		})
	}
}

func TestNotAnEvent(t *testing.T) {
	s := schema(t)
	for _, in := range []string{``, `[]`, `{"class_uid":"6003"}`, `{} {}`, `{"class_uid":6003`} {
		if err := s.Validate([]byte(in)); err == nil {
			t.Errorf("%q accepted", in)
		}
	}
}

func decode(t *testing.T, s string) map[string]any {
	d := json.NewDecoder(strings.NewReader(s))
	d.UseNumber()
	var m map[string]any
	if err := d.Decode(&m); err != nil {
		t.Fatal(err)
	}
	return m
}

func obj(m map[string]any, k string) map[string]any { return m[k].(map[string]any) }
