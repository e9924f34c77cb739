package admin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"regexp"
	"strings"
	"time"

	"github.com/wardenhq/warden/internal/apierr"
	"github.com/wardenhq/warden/internal/audit"
	"github.com/wardenhq/warden/internal/identity"
)

// keyRoutes manage service account API keys — what `warden keys` does on
// the key file, through the API. Every create and revoke is recorded in
// the audit log (config.changed, details.what "api_key") with the admin
// who did it; a change that cannot be recorded does not happen.
func keyRoutes(ks *identity.FileKeyStore, log *audit.Log) []Route {
	k := keyAPI{ks: ks, log: log}
	return []Route{
		{Method: "GET", Path: "/v1/keys", Role: Admin, Handle: k.list,
			Summary: "List API keys (never the keys, nor their hashes)",
			Reply:   "`{\"keys\":[{\"id\",\"name\",\"groups\",\"state\",\"created_at\",\"expires_at\",\"revoked_at\",\"last_used_at\"}]}`"},
		{Method: "POST", Path: "/v1/keys", Role: Admin, Handle: k.create,
			Summary: "Create an API key for a service account; the key is in this answer only",
			Params: []Param{
				{"name", "body", "service account name, 1-64 of [A-Za-z0-9._-] (principal svc:<name>)"},
				{"groups", "body", "groups of the key's principal"},
				{"expires", "body", "optional lifetime, e.g. 720h (default: never)"},
			},
			Reply:  "201 `{\"key\":\"wk_…\",\"id\",\"name\",\"groups\",\"state\",\"created_at\",\"expires_at\"}`",
			Errors: []apierr.Code{apierr.BadRequest, apierr.TooLarge, apierr.AuditUnavailable}},
		{Method: "POST", Path: "/v1/keys/{id}/revoke", Role: Admin, Handle: k.revoke,
			Summary: "Revoke an API key (every replica refuses it within about a second)",
			Params:  []Param{{"id", "path", "key id (16 hex characters)"}},
			Reply:   "the key record",
			Errors:  []apierr.Code{apierr.BadRequest, apierr.NotFound, apierr.AuditUnavailable}},
	}
}

type keyAPI struct {
	ks  *identity.FileKeyStore
	log *audit.Log
}

// keyJSON is a key record without its hash.
type keyJSON struct {
	Key        string    `json:"key,omitempty"`
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	Groups     []string  `json:"groups"`
	State      string    `json:"state"`
	CreatedAt  time.Time `json:"created_at"`
	ExpiresAt  time.Time `json:"expires_at,omitzero"`
	RevokedAt  time.Time `json:"revoked_at,omitzero"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func keyView(k identity.APIKey) keyJSON {
	gs := k.Groups
	if gs == nil {
		gs = []string{}
	}
	return keyJSON{ID: k.ID, Name: k.Name, Groups: gs, State: k.State(time.Now()), CreatedAt: k.CreatedAt,
		ExpiresAt: k.ExpiresAt, RevokedAt: k.RevokedAt, LastUsedAt: k.LastUsedAt}
}

var (
	keyNameRE = regexp.MustCompile(`^[A-Za-z0-9._-]{1,64}$`)
	keyIDRE   = regexp.MustCompile(`^[0-9a-f]{16}$`)
)

func (k keyAPI) list(w http.ResponseWriter, _ *http.Request) error {
	keys, err := k.ks.List()
	if err != nil {
		return err
	}
	out := make([]keyJSON, len(keys))
	for i, key := range keys {
		out[i] = keyView(key)
	}
	return writeJSON(w, http.StatusOK, map[string]any{"keys": out})
}

// CreateKeyBody is the body of POST /v1/keys.
type CreateKeyBody struct {
	Name    string   `json:"name"`
	Groups  []string `json:"groups"`
	Expires string   `json:"expires,omitempty"`
}

func (k keyAPI) create(w http.ResponseWriter, r *http.Request) error {
	var b CreateKeyBody
	if err := decodeBody(r, &b, false); err != nil {
		return err
	}
	if !keyNameRE.MatchString(b.Name) {
		return apierr.New(apierr.BadRequest, "name must be 1-64 characters of A-Z a-z 0-9 . _ -")
	}
	if len(b.Groups) > 64 {
		return apierr.New(apierr.BadRequest, "at most 64 groups")
	}
	for _, g := range b.Groups {
		if g == "" || len(g) > 256 || strings.ContainsFunc(g, func(c rune) bool { return c < 0x20 || c == 0x7f }) {
			return apierr.New(apierr.BadRequest, "groups must be non-empty names of at most 256 characters, without control characters")
		}
	}
	var exp time.Duration
	if b.Expires != "" {
		var err error
		if exp, err = time.ParseDuration(b.Expires); err != nil || exp <= 0 {
			return apierr.New(apierr.BadRequest, "expires must be a positive Go duration such as 720h")
		}
	}
	plain, rec, err := k.ks.Create(b.Name, b.Groups, exp)
	if err != nil {
		return err
	}
	if err := k.record(r, "created", rec); err != nil {
		// Fail closed: a key whose creation is not in the audit log must
		// not work.
		if rerr := k.ks.Revoke(rec.ID); rerr != nil {
			return errors.Join(err, fmt.Errorf("revoking unrecorded key %s: %w", rec.ID, rerr))
		}
		return apierr.Wrap(apierr.AuditUnavailable, "the audit log could not record the new key, so it was revoked at once; try again", err)
	}
	out := keyView(rec)
	out.Key = plain
	w.Header().Set("Location", "/v1/keys/"+rec.ID)
	return writeJSON(w, http.StatusCreated, out)
}

func (k keyAPI) revoke(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if !keyIDRE.MatchString(id) {
		return apierr.New(apierr.BadRequest, "a key id is 16 lowercase hex characters")
	}
	rec, ok, err := k.find(id)
	switch {
	case err != nil:
		return err
	case !ok:
		return apierr.Errorf(apierr.NotFound, "no API key %s", id)
	}
	// Record first: a revocation that cannot be recorded does not happen
	// (the key stays as it was; the caller retries).
	if err := k.record(r, "revoked", rec); err != nil {
		return apierr.Wrap(apierr.AuditUnavailable, "the audit log could not record the revocation, so the key was not revoked; try again", err)
	}
	if err := k.ks.Revoke(id); err != nil {
		if errors.Is(err, identity.ErrKeyNotFound) {
			return apierr.Errorf(apierr.NotFound, "no API key %s", id)
		}
		return err
	}
	rec, _, err = k.find(id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, keyView(rec))
}

func (k keyAPI) find(id string) (identity.APIKey, bool, error) {
	keys, err := k.ks.List()
	if err != nil {
		return identity.APIKey{}, false, err
	}
	for _, key := range keys {
		if key.ID == id {
			return key, true, nil
		}
	}
	return identity.APIKey{}, false, nil
}

// record appends the key change to the audit log (when there is one).
func (k keyAPI) record(r *http.Request, action string, rec identity.APIKey) error {
	if k.log == nil {
		return nil
	}
	p := PrincipalFrom(r.Context())
	d := map[string]any{"what": "api_key", "action": action, "key_id": rec.ID, "name": rec.Name, "actor": "admin:" + p.Subject}
	if len(rec.Groups) > 0 {
		gs := make([]any, len(rec.Groups))
		for i, g := range rec.Groups {
			gs[i] = g
		}
		d["groups"] = gs
	}
	if !rec.ExpiresAt.IsZero() {
		d["expires_at"] = rec.ExpiresAt.UTC().Format(time.RFC3339)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(r.Context()), 10*time.Second)
	defer cancel()
	e := &audit.Entry{Kind: audit.KindConfigChanged, Principal: p, RequestID: requestID(r), Details: d}
	_, err := k.log.Append(ctx, e)
	return err
}
