package identity

import (
	"errors"
	"testing"

	"github.com/wardenhq/warden/internal/apierr"
)

// TestAPIErrorStatus: every authentication failure answers, through the
// one status table of apierr, with the status it carries, and never with
// the credential.
func TestAPIErrorStatus(t *testing.T) {
	for _, e := range []*Error{
		errMissing(), errRequest(DescBadScheme), errRequest(DescTwoCredentials), errToken(DescExpired),
		errToken(DescAPIKeyRevoked), errUnavailable(), AsError(errors.New("wk_secret_leaked")),
	} {
		a := e.APIError()
		if a.Code.Status() != e.Status {
			t.Errorf("%v: apierr status %d (%s), identity status %d", e, a.Code.Status(), a.Code, e.Status)
		}
		if wantChallenge := e.Status == 401 || e.Status == 400; (a.Challenge != "") != wantChallenge {
			t.Errorf("%v: challenge %q", e, a.Challenge)
		}
		if a.Msg == "" || apierr.CodeOf(a) == apierr.Internal {
			t.Errorf("%v: %+v", e, a)
		}
	}
	if e := AsError(errors.New("wk_secret_leaked")); e.Description == "" || e.Code != CodeInvalidToken {
		t.Fatalf("generic error: %+v", e)
	}
}
