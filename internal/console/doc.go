// Package console is Warden's web console: server-rendered HTML pages
// (html/template, with htmx embedded for the few live parts) served by
// the admin listener under /ui/.
//
// It guarantees:
//   - Browser login is the OIDC authorization code flow with PKCE
//     (golang.org/x/oauth2, ID token verified with go-oidc) against a
//     configured issuer; the state, PKCE verifier and nonce stay on the
//     server, bound to the browser by a short-lived cookie.
//   - Sessions are server-side (in memory in this version: a restart
//     logs everyone out) with idle and absolute lifetimes; the cookie
//     holds only a random id, HttpOnly, SameSite=Lax, Secure over TLS;
//     logout deletes the session on the server.
//   - Every state-changing request is a POST, refused cross-origin by
//     the admin router's net/http.CrossOriginProtection before it
//     reaches the console.
//   - A strict Content-Security-Policy: scripts and styles only from the
//     console's own embedded files, no inline script or style.
//   - Everything callers and models wrote (parameters, justifications,
//     reasons, subjects) is data: html/template escapes it in its
//     context; the package never converts data to template.HTML.
//   - Roles come from groups, as on the JSON admin API (admin.roles).
//
// It must never show a value masking removed (it shows only the audit
// entries, which never hold one), nor log a token.
package console
