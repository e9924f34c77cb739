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

	if e := is.checkType(hdr, claims); e != nil {
		return nil, "", e
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
		groups, ok := groupList(v)
		if !ok {
			// Policy may deny by group; a groups claim we cannot read
			// must not turn into "no groups" (fail closed).
			return nil, "", errToken(DescGroupsClaim + ": " + is.cfg.GroupsClaim)
		}
		p.Groups = mapGroups(groups, is.cfg.GroupMap, is.cfg.GroupPrefix)
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

// checkType decides whether the token is of a type this issuer accepts,
// and checks its audience for that type.
//
//   - typ "at+jwt" (RFC 9068): an access token; `aud` must name one of
//     audiences.
//   - typ "JWT", "application/jwt" or none, without an ID-token marker
//     (IDTokenMarkers): an access token as Keycloak, Okta, Entra ID and
//     Auth0 issue them, checked like the above.
//   - the same typ values with a marker, or when access tokens are not
//     accepted or the audience does not match: an ID token, accepted only
//     when token_types lists id_token and `aud` names one of client_ids.
//   - any other typ (logout+jwt, secevent+jwt, dpop+jwt …) is a JWT made
//     for something else and never a credential.
func (is *issuer) checkType(hdr jose.Header, claims map[string]any) *Error {
	typ, _ := hdr.ExtraHeaders[jose.HeaderType].(string)
	aud := audiences(claims)
	acceptAT := slices.Contains(is.cfg.TokenTypes, TokenTypeAccess)
	acceptID := slices.Contains(is.cfg.TokenTypes, TokenTypeID)
	if isAccessTokenType(typ) {
		if !acceptAT {
			return errToken(DescAccessNotAccepted)
		}
		if !intersects(aud, is.cfg.Audiences) {
			return errToken(DescAudience)
		}
		return nil
	}
	if !isPlainJWTType(typ) {
		return errToken(DescTokenType)
	}
	marked := hasIDTokenMarker(claims)
	switch {
	case !marked && acceptAT && intersects(aud, is.cfg.Audiences):
		return nil // a JWT access token without the RFC 9068 typ
	case acceptID && intersects(aud, is.idAud):
		return nil // an ID token, accepted by explicit opt-in
	case !acceptID && (marked || !acceptAT):
		return errToken(DescIDTokenNotAccepted)
	}
	return errToken(DescAudience)
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
