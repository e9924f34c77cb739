package console

import (
	"context"

	"github.com/wardenhq/warden/internal/identity"
)

// SessionForTest starts a session for p without a login, for the
// benchmark, and returns its cookie value.
func SessionForTest(c *Console, p *identity.Principal) string {
	id, err := c.sess.create(context.Background(), p)
	if err != nil {
		panic(err)
	}
	return id
}

// SweepForTest runs one pass of the session sweeper.
func SweepForTest(c *Console) (int64, error) { return c.sess.sweep(context.Background()) }
