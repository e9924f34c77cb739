package identity

import (
	"net/http"
	"strings"
)

// spoofable are identity headers some proxies and model servers trust. A
// client must never be able to set them on the upstream request.
var spoofable = []string{
	"X-Forwarded-User",
	"X-Forwarded-Email",
	"X-Forwarded-Groups",
	"X-Forwarded-Preferred-Username",
	"X-Remote-User",
	"X-Remote-Group",
	"Remote-User",
}

// spoofablePrefixes are header name prefixes stripped wholesale
// (canonical form).
var spoofablePrefixes = []string{"X-Warden-", "X-Auth-Request-"}

// StripClientIdentityHeaders removes from h every identity header a client
// may have sent: X-Warden-*, X-Auth-Request-*, X-Forwarded-User/-Email/
// -Groups, X-Remote-User, and each name in extra (which should include the
// assertion header when it is not an X-Warden-* name). It does not touch
// Authorization or X-API-Key; see StripCredentials.
func StripClientIdentityHeaders(h http.Header, extra []string) {
	for name := range h {
		for _, p := range spoofablePrefixes {
			if strings.HasPrefix(name, p) || strings.HasPrefix(http.CanonicalHeaderKey(name), p) {
				delete(h, name)
			}
		}
	}
	for _, name := range spoofable {
		h.Del(name)
	}
	for _, name := range extra {
		h.Del(name)
	}
}

// StripCredentials removes the caller's credential (Authorization,
// X-API-Key) so it does not reach the upstream.
func StripCredentials(h http.Header) {
	h.Del("Authorization")
	h.Del("X-API-Key")
}

// PrepareUpstreamHeaders applies the configured header policy to an
// outbound request's headers: strips client identity headers (built-in,
// strip_headers and the assertion header), strips the credential unless
// forward_credential, and sets the assertion header to assertion (when
// non-empty).
func (a *Authenticator) PrepareUpstreamHeaders(h http.Header, assertion string) {
	extra := append([]string{a.cfg.Assertion.Header}, a.cfg.StripHeaders...)
	StripClientIdentityHeaders(h, extra)
	if !a.cfg.ForwardCredential {
		StripCredentials(h)
	}
	if assertion != "" {
		h.Set(a.cfg.Assertion.Header, assertion)
	}
}
