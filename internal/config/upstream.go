package config

import (
	"errors"
	"net/http"
	"strings"

	"github.com/wardenhq/warden/internal/config/field"
	"github.com/wardenhq/warden/internal/identity"
)

// reservedHeaders may not carry an upstream credential: the gateway sets
// them itself, or they frame the request.
var reservedHeaders = map[string]bool{
	"Host": true, "Content-Length": true, "Transfer-Encoding": true, "Connection": true,
	"Te": true, "Trailer": true, "Upgrade": true, "Keep-Alive": true, "Proxy-Connection": true,
	"X-Request-Id": true, "X-Forwarded-For": true, "X-Forwarded-Host": true, "X-Forwarded-Proto": true,
	"Forwarded": true, "Content-Type": true, "Content-Encoding": true,
}

// validate checks the header name and value. The value is never quoted
// in an error: it is a secret.
func (c *UpstreamCredential) validate(id *identity.Config) error {
	var errs []error
	name := http.CanonicalHeaderKey(c.Header)
	switch {
	case !validHeaderName(c.Header):
		errs = append(errs, field.Errorf("header", "%q is not a valid header name", c.Header))
	case reservedHeaders[name]:
		errs = append(errs, field.Errorf("header", "%s is set by the gateway itself and cannot carry a credential", name))
	case id != nil && strings.EqualFold(c.Header, id.Assertion.Header):
		errs = append(errs, field.Errorf("header", "%s carries the identity assertion (identity.assertion.header)", name))
	}
	switch {
	case c.Value == "":
		errs = append(errs, field.Errorf("value", "is required (e.g. \"Bearer ${MODEL_API_KEY}\"); an environment variable that expands to nothing counts as missing"))
	case !validHeaderValue(c.Value):
		errs = append(errs, field.Errorf("value", "contains a control character (line break or NUL); the value is not shown because it is a secret"))
	}
	return errors.Join(errs...)
}

func validHeaderName(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			continue
		}
		if !strings.ContainsRune("!#$%&'*+-.^_`|~", rune(c)) {
			return false
		}
	}
	return true
}

func validHeaderValue(s string) bool {
	for i := 0; i < len(s); i++ {
		if c := s[i]; c < 0x20 && c != '\t' || c == 0x7f {
			return false
		}
	}
	return true
}
