package identity

import (
	"errors"
	"fmt"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/config/field"
)

// Token types an issuer may be trusted for.
const (
	// TokenTypeAccess is a JWT access token: an RFC 9068 one (header typ
	// "at+jwt"), or a JWT with typ "JWT" or none that carries none of the
	// ID-token markers (IDTokenMarkers) — the access tokens Keycloak, Okta,
	// Entra ID and Auth0 issue.
	TokenTypeAccess = "access_token"
	// TokenTypeID is an OpenID Connect ID token: a JWT that is not typed
	// "at+jwt" and carries an ID-token marker, or (with access_token not
	// accepted or its audience not matching) any untyped JWT whose `aud`
	// names one of client_ids. Accepted only when token_types lists it.
	TokenTypeID = "id_token"
)

// Limits and defaults. Exported so the configuration reference can cite them.
const (
	// MaxTokenBytes is the largest bearer token accepted; larger ones are
	// refused before any parsing.
	MaxTokenBytes = 16 << 10
	// MaxClockSkew is the largest clock_skew a config may set.
	MaxClockSkew = 5 * time.Minute

	DefaultClockSkew          = 30 * time.Second
	DefaultJWKSRefresh        = 10 * time.Minute
	DefaultUnknownKIDCooldown = 30 * time.Second
	DefaultTokenCacheSize     = 10000
	DefaultAssertionHeader    = "X-Warden-Identity"
	DefaultAssertionTTL       = 60 * time.Second
	DefaultAPIKeyFile         = "apikeys.json"
	DefaultAssertionKeyFile   = "assertion.key"
)

// DefaultAlgorithms are the signing algorithms accepted when an issuer
// lists none. "none" and the HMAC family are never accepted: a gateway
// holds no shared secret with an IdP, and HMAC with a public key as the
// secret is the classic algorithm-confusion attack.
var DefaultAlgorithms = []string{"RS256", "RS384", "RS512", "PS256", "ES256", "ES384", "EdDSA"}

// supportedAlgorithms is every asymmetric algorithm go-jose verifies.
var supportedAlgorithms = []string{
	"RS256", "RS384", "RS512", "PS256", "PS384", "PS512",
	"ES256", "ES384", "ES512", "EdDSA",
}

// Config is the `identity:` section of the Warden configuration.
type Config struct {
	// Issuers are the trusted OpenID providers. Empty: only API keys.
	Issuers []IssuerConfig `yaml:"issuers"`
	// JWKSRefresh is how often each issuer's signing keys are refetched
	// in the background, and the longest a verified token stays cached.
	// Default 10m.
	JWKSRefresh time.Duration `yaml:"jwks_refresh"`
	// UnknownKIDCooldown is the least time between two JWKS fetches
	// caused by tokens naming a key id we do not know. Default 30s.
	UnknownKIDCooldown time.Duration `yaml:"unknown_kid_cooldown"`
	// TokenCacheSize bounds the verified-token cache (entries). Default
	// 10000; negative disables the cache.
	TokenCacheSize int `yaml:"token_cache_size"`
	// APIKeys configures Warden-issued service account keys.
	APIKeys APIKeysConfig `yaml:"api_keys"`
	// Assertion configures the signed identity sent to the upstream.
	Assertion AssertionConfig `yaml:"assertion"`
	// StripHeaders are extra client request headers removed before the
	// request is forwarded (in addition to the built-in list).
	StripHeaders []string `yaml:"strip_headers"`
	// ForwardCredential keeps the caller's Authorization / X-API-Key
	// header on the upstream request. Default false.
	ForwardCredential bool `yaml:"forward_credential"`
}

// IssuerConfig is one trusted OpenID provider.
type IssuerConfig struct {
	// Issuer is the exact `iss` value of its tokens (an https URL; http is
	// allowed only for loopback hosts).
	Issuer string `yaml:"issuer"`
	// DiscoveryURL overrides <issuer>/.well-known/openid-configuration.
	DiscoveryURL string `yaml:"discovery_url"`
	// Audiences: an access token must name one of these in `aud`.
	Audiences []string `yaml:"audiences"`
	// ClientIDs: an ID token must name one of these in `aud`. Empty:
	// Audiences is used for ID tokens too.
	ClientIDs []string `yaml:"client_ids"`
	// TokenTypes accepted: access_token, id_token. Default
	// [access_token]: an ID token is a login receipt for a client, not a
	// credential for an API, so accepting one as a bearer token is an
	// explicit opt-in.
	TokenTypes []string `yaml:"token_types"`
	// Algorithms accepted. Default DefaultAlgorithms; none/HS* rejected.
	Algorithms []string `yaml:"algorithms"`
	// ClockSkew tolerated on exp/nbf. Default 30s, at most 5m.
	ClockSkew time.Duration `yaml:"clock_skew"`
	// RequiredClaims maps a claim (path, as groups_claim) to the value it
	// must have (or contain, when the claim is a list).
	RequiredClaims map[string]string `yaml:"required_claims"`
	// GroupsClaim is where groups are read: "groups", "roles",
	// "realm_access.roles", "cognito:groups", "https://example.com/groups".
	// The whole string is tried as a claim name first, then as a dotted
	// path. Default "groups".
	GroupsClaim string `yaml:"groups_claim"`
	// GroupPrefix is prepended to every group (after GroupMap).
	GroupPrefix string `yaml:"group_prefix"`
	// GroupMap renames groups (IdP name -> Warden name).
	GroupMap map[string]string `yaml:"group_map"`
	// Claims are extra claims copied into Principal.Claims.
	Claims []string `yaml:"claims"`
	// ServiceRule decides which tokens are service (client_credentials)
	// principals.
	ServiceRule ServiceRule `yaml:"service_rule"`
}

// ServiceRule tells client_credentials tokens from user tokens. A token is
// a service token when MatchClientSubject is on (the default) and its
// `client_id` or `azp` equals its `sub`, or when Claim has one of Values.
type ServiceRule struct {
	// MatchClientSubject: client_id/azp == sub means service. Default true.
	MatchClientSubject *bool `yaml:"match_client_subject"`
	// Claim checked for Values. Default "gty".
	Claim string `yaml:"claim"`
	// Values of Claim meaning service. Default ["client-credentials"].
	Values []string `yaml:"values"`
}

// APIKeysConfig configures service account API keys.
type APIKeysConfig struct {
	// Enabled accepts API keys. Default true.
	Enabled *bool `yaml:"enabled"`
	// File is the key store. Default <data dir>/apikeys.json.
	File string `yaml:"file"`
}

// AssertionConfig configures the identity assertion sent upstream.
type AssertionConfig struct {
	// Header carrying the assertion. Default X-Warden-Identity.
	Header string `yaml:"header"`
	// TTL of each assertion. Default 60s.
	TTL time.Duration `yaml:"ttl"`
	// KeyFile holds the Ed25519 signing key (created if missing, 0600).
	// Default <data dir>/assertion.key.
	KeyFile string `yaml:"key_file"`
	// Issuer is the `iss` of assertions. Default "warden".
	Issuer string `yaml:"issuer"`
}

// SetDefaults fills every unset field with its default. File paths that
// depend on the data directory are resolved by New / ResolvePaths.
func (c *Config) SetDefaults() {
	if c.JWKSRefresh == 0 {
		c.JWKSRefresh = DefaultJWKSRefresh
	}
	if c.UnknownKIDCooldown == 0 {
		c.UnknownKIDCooldown = DefaultUnknownKIDCooldown
	}
	if c.TokenCacheSize == 0 {
		c.TokenCacheSize = DefaultTokenCacheSize
	}
	if c.APIKeys.Enabled == nil {
		t := true
		c.APIKeys.Enabled = &t
	}
	if c.Assertion.Header == "" {
		c.Assertion.Header = DefaultAssertionHeader
	}
	if c.Assertion.TTL == 0 {
		c.Assertion.TTL = DefaultAssertionTTL
	}
	if c.Assertion.Issuer == "" {
		c.Assertion.Issuer = "warden"
	}
	for i := range c.Issuers {
		c.Issuers[i].setDefaults()
	}
}

func (ic *IssuerConfig) setDefaults() {
	if len(ic.TokenTypes) == 0 {
		ic.TokenTypes = []string{TokenTypeAccess}
	}
	if len(ic.Algorithms) == 0 {
		ic.Algorithms = slices.Clone(DefaultAlgorithms)
	}
	if ic.ClockSkew == 0 {
		ic.ClockSkew = DefaultClockSkew
	}
	if ic.GroupsClaim == "" {
		ic.GroupsClaim = "groups"
	}
	if ic.ServiceRule.MatchClientSubject == nil {
		t := true
		ic.ServiceRule.MatchClientSubject = &t
	}
	if ic.ServiceRule.Claim == "" {
		ic.ServiceRule.Claim = "gty"
	}
	if len(ic.ServiceRule.Values) == 0 {
		ic.ServiceRule.Values = []string{"client-credentials"}
	}
}

// APIKeysEnabled reports whether API keys are accepted (default true).
func (c *Config) APIKeysEnabled() bool { return c.APIKeys.Enabled == nil || *c.APIKeys.Enabled }

// ResolvePaths fills the file paths that default into dataDir.
func (c *Config) ResolvePaths(dataDir string) {
	if c.APIKeys.File == "" {
		c.APIKeys.File = filepath.Join(dataDir, DefaultAPIKeyFile)
	}
	if c.Assertion.KeyFile == "" {
		c.Assertion.KeyFile = filepath.Join(dataDir, DefaultAssertionKeyFile)
	}
}

// Validate reports every problem in the (defaulted) config as field
// errors, joined.
func (c *Config) Validate() error {
	var errs []error
	if c.JWKSRefresh < time.Second {
		errs = append(errs, field.Errorf("jwks_refresh", "must be at least 1s, got %s", c.JWKSRefresh))
	}
	if c.UnknownKIDCooldown < 0 {
		errs = append(errs, field.Errorf("unknown_kid_cooldown", "must not be negative"))
	}
	if c.Assertion.TTL < time.Second || c.Assertion.TTL > time.Hour {
		errs = append(errs, field.Errorf("assertion.ttl", "must be between 1s and 1h, got %s", c.Assertion.TTL))
	}
	if !validHeaderName(c.Assertion.Header) {
		errs = append(errs, field.Errorf("assertion.header", "%q is not a valid header name", c.Assertion.Header))
	}
	for i, h := range c.StripHeaders {
		if !validHeaderName(h) {
			errs = append(errs, field.Errorf(fmt.Sprintf("strip_headers[%d]", i), "%q is not a valid header name", h))
		}
	}
	seen := map[string]int{}
	for i := range c.Issuers {
		p := fmt.Sprintf("issuers[%d]", i)
		if j, dup := seen[c.Issuers[i].Issuer]; dup && c.Issuers[i].Issuer != "" {
			errs = append(errs, field.Errorf(p+".issuer", "duplicates issuers[%d]", j))
		}
		seen[c.Issuers[i].Issuer] = i
		if err := c.Issuers[i].validate(); err != nil {
			errs = append(errs, field.Prefix(p, err))
		}
	}
	return errors.Join(errs...)
}

func (ic *IssuerConfig) validate() error {
	var errs []error
	if ic.Issuer == "" {
		errs = append(errs, field.Errorf("issuer", "is required"))
	} else if err := checkURL(ic.Issuer); err != nil {
		errs = append(errs, field.Errorf("issuer", "%v", err))
	}
	if ic.DiscoveryURL != "" {
		if err := checkURL(ic.DiscoveryURL); err != nil {
			errs = append(errs, field.Errorf("discovery_url", "%v", err))
		}
	}
	for i, t := range ic.TokenTypes {
		if t != TokenTypeAccess && t != TokenTypeID {
			errs = append(errs, field.Errorf(fmt.Sprintf("token_types[%d]", i), "must be %s or %s, got %q", TokenTypeAccess, TokenTypeID, t))
		}
	}
	if slices.Contains(ic.TokenTypes, TokenTypeAccess) && len(ic.Audiences) == 0 {
		errs = append(errs, field.Errorf("audiences", "at least one audience is required to accept access tokens (token_types defaults to [access_token]; ID tokens only with token_types: [id_token] or [access_token, id_token] and client_ids)"))
	}
	if slices.Contains(ic.TokenTypes, TokenTypeID) && len(ic.ClientIDs) == 0 && len(ic.Audiences) == 0 {
		errs = append(errs, field.Errorf("client_ids", "client_ids or audiences are required to accept ID tokens"))
	}
	for i, a := range ic.Algorithms {
		p := fmt.Sprintf("algorithms[%d]", i)
		switch {
		case strings.EqualFold(a, "none"):
			errs = append(errs, field.Errorf(p, "alg none is never accepted"))
		case strings.HasPrefix(strings.ToUpper(a), "HS"):
			errs = append(errs, field.Errorf(p, "HMAC algorithm %s is never accepted (it would let a public key act as a shared secret)", a))
		case !slices.Contains(supportedAlgorithms, a):
			errs = append(errs, field.Errorf(p, "unsupported algorithm %q (supported: %s)", a, strings.Join(supportedAlgorithms, ", ")))
		}
	}
	if ic.ClockSkew < 0 || ic.ClockSkew > MaxClockSkew {
		errs = append(errs, field.Errorf("clock_skew", "must be between 0 and %s, got %s", MaxClockSkew, ic.ClockSkew))
	}
	return errors.Join(errs...)
}

func checkURL(s string) error {
	u, err := url.Parse(s)
	if err != nil {
		return fmt.Errorf("not a URL: %v", err)
	}
	switch u.Scheme {
	case "https":
	case "http":
		h := u.Hostname()
		if h != "localhost" && !strings.HasPrefix(h, "127.") && h != "::1" {
			return fmt.Errorf("http is allowed only for loopback hosts; use https")
		}
	default:
		return fmt.Errorf("scheme must be https, got %q", u.Scheme)
	}
	if u.Host == "" {
		return fmt.Errorf("host is missing")
	}
	return nil
}

func validHeaderName(h string) bool {
	if h == "" {
		return false
	}
	for _, r := range h {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || strings.ContainsRune("!#$%&'*+-.^_`|~", r)) {
			return false
		}
	}
	return true
}
