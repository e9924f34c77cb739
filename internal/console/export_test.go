package console

import "github.com/wardenhq/warden/internal/identity"

// SessionForTest starts a session for p without a login, for the
// benchmark, and returns its cookie value.
func SessionForTest(c *Console, p *identity.Principal) string { return c.sess.create(p) }
