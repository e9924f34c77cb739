//go:build !linux

package export

import (
	"errors"
	"net"
)

// unackedBytes is not measurable on this platform: a written batch
// counts as delivered.
func unackedBytes(c *net.TCPConn) (int, error) {
	return 0, errors.New("export: unacknowledged bytes are not measurable on this platform")
}
