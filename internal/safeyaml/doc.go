// Package safeyaml is the one door through which Warden parses YAML that
// an operator (or an attacker with write access to a watched file) wrote:
// the configuration, policy files and policy test suites.
//
// It wraps github.com/goccy/go-yaml with two guarantees the library does
// not give on its own:
//
//   - No input makes it panic. The library dereferences nil on some
//     malformed documents (a tag with nothing after it, `rules:  ! `, is
//     goccy/go-yaml issue #735, unfixed in the latest release v1.19.2).
//     Every entry point recovers such a panic and returns it as an error,
//     so a bad file on hot reload leaves the previous policy in force
//     instead of killing the gateway.
//   - YAML tags (`!foo`, `!!seq`, …) are refused with their line and
//     column before decoding. Warden's files never need them, and they
//     are where the library's decoder is least robust.
//
// Errors carry the position of the offending token and implement the
// library's error interface (GetToken, GetMessage), so callers locate them
// the same way as the library's own syntax errors.
//
// It must never log or print document content beyond the offending
// token: a config may hold expanded secrets.
package safeyaml
