package main

import (
	"net/http/httptest"
	"testing"
	"time"

	"github.com/wardenhq/warden/internal/devstack"
)

// startIssuer serves a demo OIDC issuer and a demo model server for a
// test; both stop at its end.
func startIssuer(t *testing.T) (issuer *devstack.Issuer, issuerURL, modelURL string) {
	t.Helper()
	idp := httptest.NewUnstartedServer(nil)
	idp.Start()
	t.Cleanup(idp.Close)
	issuer, err := devstack.NewIssuer(idp.URL)
	if err != nil {
		t.Fatal(err)
	}
	idp.Config.Handler = issuer.Handler()
	up := httptest.NewServer(devstack.NewModelServer().Handler())
	t.Cleanup(up.Close)
	return issuer, idp.URL, up.URL
}

// token is a demo user's access token, valid for an hour.
func token(t *testing.T, issuer *devstack.Issuer, user string) string {
	t.Helper()
	tok, err := issuer.Token(user, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}
