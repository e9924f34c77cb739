package audit

import (
	"bytes"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/identity"
)

// notRecorded are the identity.Principal fields an entry deliberately
// does not keep: personal data beyond what identifies the caller, and
// what only matters while the credential is in use.
var notRecorded = map[string]bool{"Email": true, "Claims": true, "ExpiresAt": true}

// TestPrincipalRecordFields: every field of identity.Principal is either
// carried into the entry by recordPrincipal (and back by principal) or
// listed in notRecorded. A field added to identity.Principal fails this
// test until someone decides whether the audit log keeps it.
func TestPrincipalRecordFields(t *testing.T) {
	typ := reflect.TypeFor[identity.Principal]()
	full := &identity.Principal{}
	v := reflect.ValueOf(full).Elem()
	for i := range typ.NumField() {
		f := v.Field(i)
		switch f.Kind() {
		case reflect.String:
			f.SetString("x-" + typ.Field(i).Name)
		case reflect.Slice:
			f.Set(reflect.ValueOf([]string{"g-" + typ.Field(i).Name}))
		case reflect.Map:
			f.Set(reflect.ValueOf(map[string]any{"c": "v"}))
		case reflect.Struct: // time.Time
			f.Set(reflect.ValueOf(time.Unix(1e9, 0)))
		default:
			t.Fatalf("field %s of kind %s: extend this test", typ.Field(i).Name, f.Kind())
		}
	}
	back := recordPrincipal(full).principal()
	bv := reflect.ValueOf(back).Elem()
	for i := range typ.NumField() {
		name := typ.Field(i).Name
		kept := reflect.DeepEqual(bv.Field(i).Interface(), v.Field(i).Interface())
		switch {
		case notRecorded[name] && !bv.Field(i).IsZero():
			t.Errorf("%s is listed as not recorded but the record carries it", name)
		case !notRecorded[name] && !kept:
			t.Errorf("identity.Principal.%s is not carried into audit entries: add it to principalRecord (sorted) and recordPrincipal, or to notRecorded", name)
		}
	}
}

// TestPrincipalEncoding: the entry's bytes hold the recorded fields in
// the audit package's own names, whatever identity's JSON says; the
// fields not recorded never reach the bytes; bytes with them are not
// canonical.
func TestPrincipalEncoding(t *testing.T) {
	e := &Entry{V: SchemaVersion, Kind: KindRequestAdmitted, ID: "i", Time: time.Unix(0, 0),
		Principal: &identity.Principal{Issuer: "https://idp", Subject: "alice", Kind: identity.KindUser, Name: "Alice",
			Email: "alice@example.com", Groups: []string{"ml-users"}, Claims: map[string]any{"dept": "x"},
			AuthMethod: "oidc", CredentialID: "0123456789abcdef", ExpiresAt: time.Now()}}
	b, err := Marshal(e)
	if err != nil {
		t.Fatal(err)
	}
	want := `"principal":{"auth_method":"oidc","credential_id":"0123456789abcdef","groups":["ml-users"],"iss":"https://idp","kind":"user","name":"Alice","sub":"alice"}`
	if !bytes.Contains(b, []byte(want)) {
		t.Fatalf("principal encoding:\n%s\nwant %s", b, want)
	}
	for _, leak := range []string{"alice@example.com", "dept", "exp"} {
		if bytes.Contains(b, []byte(leak)) {
			t.Fatalf("%q recorded: %s", leak, b)
		}
	}
	slow, err := marshalSlow(e)
	if err != nil || !bytes.Equal(slow, b) {
		t.Fatalf("reference encoding differs: %s %v", slow, err)
	}
	got, err := ParseEntry(3, b)
	if err != nil {
		t.Fatal(err)
	}
	if p := got.Principal; p.Subject != "alice" || p.Name != "Alice" || p.Email != "" || p.CredentialID != "0123456789abcdef" || p.Kind != identity.KindUser {
		t.Fatalf("parsed principal %+v", p)
	}
	withEmail := strings.Replace(string(b), `"name":"Alice"`, `"email":"a@b","name":"Alice"`, 1)
	if _, err := ParseEntry(3, []byte(withEmail)); err == nil {
		t.Fatal("an entry recording an email was accepted")
	}
	none, _ := Marshal(&Entry{V: SchemaVersion, Kind: KindGatewayStarted, ID: "j", Time: time.Unix(0, 0)})
	if bytes.Contains(none, []byte("principal")) {
		t.Fatalf("no principal, yet: %s", none)
	}
}
