package identity

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testAsserter(t testing.TB, c *clock) *Asserter {
	t.Helper()
	a, err := NewAsserter(filepath.Join(t.TempDir(), "assertion.key"), "warden", time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	a.now = c.now
	return a
}

func assertionPayload(t *testing.T, tok string) map[string]any {
	t.Helper()
	parts := strings.Split(tok, ".")
	b, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// TestAssertionReuse: one assertion per (principal, audience) is reused
// while more than half its lifetime remains, then replaced; another
// audience, another subject or changed groups never share one; the
// assertion carries no request id.
func TestAssertionReuse(t *testing.T) {
	c := newClock()
	a := testAsserter(t, c)
	alice := &Principal{Issuer: "https://idp", Subject: "alice", Kind: KindUser, Groups: []string{"ml-users"}, AuthMethod: "oidc"}
	first, err := a.Assertion(alice, "chat")
	if err != nil {
		t.Fatal(err)
	}
	if _, has := assertionPayload(t, first)["rid"]; has {
		t.Fatal("assertion carries a request id")
	}
	c.advance(29 * time.Second)
	if again, _ := a.Assertion(alice, "chat"); again != first {
		t.Fatal("not reused with more than half its lifetime left")
	}
	copyOfAlice := *alice
	copyOfAlice.Groups = []string{"ml-users"}
	if again, _ := a.Assertion(&copyOfAlice, "chat"); again != first {
		t.Fatal("an equal principal (another copy) did not reuse it")
	}
	for name, other := range map[string]func() (string, error){
		"other audience": func() (string, error) { return a.Assertion(alice, "embeddings") },
		"other subject": func() (string, error) {
			p := *alice
			p.Subject = "bob"
			return a.Assertion(&p, "chat")
		},
		"changed groups": func() (string, error) {
			p := *alice
			p.Groups = []string{"ml-users", "ml-admins"}
			return a.Assertion(&p, "chat")
		},
		"groups split differently": func() (string, error) {
			p := *alice
			p.Groups = []string{"ml", "-users"}
			return a.Assertion(&p, "chat")
		},
		"other issuer": func() (string, error) {
			p := *alice
			p.Issuer = "https://other-idp"
			return a.Assertion(&p, "chat")
		},
	} {
		tok, err := other()
		if err != nil || tok == first {
			t.Fatalf("%s: shares the assertion (%v)", name, err)
		}
	}
	c.advance(1 * time.Second) // 30s: exactly half is left
	renewed, _ := a.Assertion(alice, "chat")
	if renewed == first {
		t.Fatal("reused with only half its lifetime left")
	}
	m := assertionPayload(t, renewed)
	if exp, iat := m["exp"].(float64), m["iat"].(float64); exp-iat != 60 || int64(iat) != c.now().Unix() {
		t.Fatalf("renewed iat %v exp %v", iat, exp)
	}
	// Sign always signs anew.
	s1, _ := a.Sign(alice, "chat")
	s2, _ := a.Sign(alice, "chat")
	if s1 == s2 {
		t.Fatal("Sign reused an assertion")
	}
}

// TestAssertionCacheBounded: a flood of distinct principals never grows
// the cache past its bound, and every one still gets a valid assertion.
func TestAssertionCacheBounded(t *testing.T) {
	c := newClock()
	a := testAsserter(t, c)
	a.cache = newAssertionCache(64)
	for i := range 1000 {
		p := &Principal{Issuer: "https://idp", Subject: fmt.Sprintf("user-%d", i)}
		tok, err := a.Assertion(p, "chat")
		if err != nil || assertionPayload(t, tok)["sub"] != p.Subject {
			t.Fatalf("user-%d: %v", i, err)
		}
		if n := a.cache.len(); n > 64 {
			t.Fatalf("cache holds %d entries, bound 64", n)
		}
	}
}

// BenchmarkAssertionPerRequest compares, in one run, what the gateway
// pays per request for the upstream assertion: signing one per request
// (before) and reusing one per (principal, route) while more than half
// its lifetime remains (after). Each iteration is one request of each
// kind, interleaved, so machine load hits both alike. 50 principals on 2
// routes; the clock advances 1 ms per request, so the cached side also
// pays its renewals (every 30 s per pair). Reported: ns per request of
// each and the speedup (before/after).
func BenchmarkAssertionPerRequest(b *testing.B) {
	principals := make([]*Principal, 50)
	for i := range principals {
		principals[i] = &Principal{Issuer: "https://idp.example.com", Subject: fmt.Sprintf("user-%d", i), Kind: KindUser,
			Groups: []string{"ml-users", "eng"}, Email: fmt.Sprintf("user-%d@example.com", i), AuthMethod: "oidc"}
	}
	routes := []string{"chat", "embeddings"}
	c := newClock()
	signer, cached := testAsserter(b, c), testAsserter(b, c)
	var signDur, cachedDur time.Duration
	i := 0
	for b.Loop() {
		p, r := principals[i%len(principals)], routes[(i/len(principals))%len(routes)]
		t0 := time.Now()
		if _, err := signer.Sign(p, r); err != nil {
			b.Fatal(err)
		}
		t1 := time.Now()
		if _, err := cached.Assertion(p, r); err != nil {
			b.Fatal(err)
		}
		t2 := time.Now()
		signDur += t1.Sub(t0)
		cachedDur += t2.Sub(t1)
		c.advance(time.Millisecond)
		i++
	}
	n := float64(b.N)
	b.ReportMetric(float64(signDur.Nanoseconds())/n, "sign-ns/req")
	b.ReportMetric(float64(cachedDur.Nanoseconds())/n, "cached-ns/req")
	if cachedDur > 0 {
		b.ReportMetric(float64(signDur)/float64(cachedDur), "speedup")
	}
}
