package identity

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"errors"
	"maps"
	"slices"
	"strings"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

// issuer verifies the tokens of one trusted OpenID provider.
type issuer struct {
	cfg   IssuerConfig
	algs  []jose.SignatureAlgorithm
	keys  *KeySet
	idAud []string // audiences accepted on ID tokens
}

func newIssuer(cfg IssuerConfig, keys *KeySet) *issuer {
	idAud := cfg.ClientIDs
	if len(idAud) == 0 {
		idAud = cfg.Audiences
	}
	return &issuer{cfg: cfg, algs: asJoseAlgs(cfg.Algorithms), keys: keys, idAud: idAud}
}

// unverifiedIssuer reads `iss` from a compact JWS without verifying it, so
// the right issuer (or an unknown-issuer refusal) is chosen before any
// key lookup or network call.
func unverifiedIssuer(token string) (string, error) {
	first := strings.IndexByte(token, '.')
	if first < 0 {
		return "", errors.New("not a JWS")
	}
	rest := token[first+1:]
	second := strings.IndexByte(rest, '.')
	if second < 0 || strings.IndexByte(rest[second+1:], '.') >= 0 {
		return "", errors.New("not a compact JWS")
	}
	payload, err := base64.RawURLEncoding.DecodeString(rest[:second])
	if err != nil {
		return "", err
	}
	var c struct {
		Iss string `json:"iss"`
	}
	if err := json.Unmarshal(payload, &c); err != nil {
		return "", err
	}
	return c.Iss, nil
}

// verify checks token fully and returns its principal and the key id
// that signed it.
func (is *issuer) verify(ctx context.Context, token string, now time.Time) (*Principal, string, *Error) {
	jws, err := jose.ParseSignedCompact(token, is.algs)
	if err != nil {
		var algErr *jose.ErrUnexpectedSignatureAlgorithm
		if errors.As(err, &algErr) {
			return nil, "", errToken(DescAlgNotAllowed)
		}
		return nil, "", errToken(DescMalformed)
	}
	if len(jws.Signatures) != 1 {
		return nil, "", errToken(DescMalformed)
	}
	hdr := jws.Signatures[0].Header
	payload, err := is.keys.verify(ctx, jws)
	switch {
	case err == nil:
	case errors.Is(err, errNoKeys):
		return nil, "", errUnavailable()
	case errors.Is(err, errUnknownKID):
		return nil, "", errToken(DescUnknownKey)
	default:
		return nil, "", errToken(DescBadSignature)
	}

	var claims map[string]any
	dec := json.NewDecoder(bytes.NewReader(payload))
	dec.UseNumber()
	if err := dec.Decode(&claims); err != nil || claims == nil {
		return nil, "", errToken(DescMalformed)
	}
	// The signed iss must be the issuer we picked from the unverified one.
	if stringClaim(claims, "iss") != is.cfg.Issuer {
		return nil, "", errToken(DescUnknownIssuer)
	}

	exp, hasExp, err1 := numericDate(claims, "exp")
	nbf, hasNbf, err2 := numericDate(claims, "nbf")
	if err1 != nil || err2 != nil {
		return nil, "", errToken(DescMalformed)
	}
	if !hasExp {
		return nil, "", errToken(DescMissingExpiry)
	}
	skew := is.cfg.ClockSkew
	if !now.Before(exp.Add(skew)) {
		return nil, "", errToken(DescExpired)
	}
	if hasNbf && now.Add(skew).Before(nbf) {
		return nil, "", errToken(DescNotYetValid)
	}

	// Token type: RFC 9068 access tokens say typ at+jwt; anything else is
	// treated as an ID token and must name one of our clients.
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	aud := audiences(claims)
	if isAccessTokenType(typ) {
		if !slices.Contains(is.cfg.TokenTypes, TokenTypeAccess) {
			return nil, "", errToken(DescAccessNotAccepted)
		}
		if !intersects(aud, is.cfg.Audiences) {
			return nil, "", errToken(DescAudience)
		}
	} else {
		if !slices.Contains(is.cfg.TokenTypes, TokenTypeID) {
			return nil, "", errToken(DescIDTokenNotAccepted)
		}
		if !intersects(aud, is.idAud) {
			return nil, "", errToken(DescAudience)
		}
	}

	sub := stringClaim(claims, "sub")
	if sub == "" {
		return nil, "", errToken(DescMissingSubject)
	}
	for _, name := range sortedKeys(is.cfg.RequiredClaims) {
		if !claimMatches(claims, name, is.cfg.RequiredClaims[name]) {
			return nil, "", errToken(DescRequiredClaim + ": " + name)
		}
	}

	p := &Principal{
		Issuer:       is.cfg.Issuer,
		Subject:      sub,
		Kind:         KindUser,
		Name:         firstNonEmpty(stringClaim(claims, "name"), stringClaim(claims, "preferred_username")),
		Email:        stringClaim(claims, "email"),
		AuthMethod:   "oidc",
		CredentialID: tokenID(token),
		ExpiresAt:    exp,
	}
	if is.cfg.ServiceRule.isService(claims, sub) {
		p.Kind = KindService
	}
	if v, ok := claimPath(claims, is.cfg.GroupsClaim); ok {
		p.Groups = mapGroups(stringList(v), is.cfg.GroupMap, is.cfg.GroupPrefix)
	}
	for _, name := range is.cfg.Claims {
		if v, ok := claimPath(claims, name); ok {
			if p.Claims == nil {
				p.Claims = make(map[string]any, len(is.cfg.Claims))
			}
			p.Claims[name] = plainJSON(v)
		}
	}
	return p, hdr.KeyID, nil
}

// tokenID is the credential id of a bearer token: 16 hex chars of its
// SHA-256, enough to correlate audit records, useless to an attacker.
func tokenID(token string) string {
	sum := hashToken(token)
	return hex.EncodeToString(sum[:8])
}

func intersects(a, b []string) bool {
	for _, x := range a {
		if slices.Contains(b, x) {
			return true
		}
	}
	return false
}

func firstNonEmpty(s ...string) string {
	for _, x := range s {
		if x != "" {
			return x
		}
	}
	return ""
}

func sortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	return slices.Sorted(maps.Keys(m))
}
