package config

import (
	"fmt"
	"strconv"
	"strings"

	"github.com/goccy/go-yaml/ast"

	"github.com/wardenhq/warden/internal/safeyaml"
)

// ByteSize is a size in bytes. In YAML it is an integer or a string with a
// unit: "512KiB", "10MiB", "1GiB", "100KB", "5MB".
type ByteSize int64

var byteUnits = []struct {
	suffix string
	mult   int64
}{
	{"KiB", 1 << 10}, {"MiB", 1 << 20}, {"GiB", 1 << 30},
	{"KB", 1000}, {"MB", 1000 * 1000}, {"GB", 1000 * 1000 * 1000},
	{"B", 1},
}

// ParseByteSize parses "10MiB", "100KB", "4096".
func ParseByteSize(s string) (ByteSize, error) {
	s = strings.TrimSpace(s)
	for _, u := range byteUnits {
		if num, ok := strings.CutSuffix(s, u.suffix); ok {
			n, err := strconv.ParseInt(strings.TrimSpace(num), 10, 64)
			if err != nil || n < 0 {
				return 0, fmt.Errorf("invalid size %q (want e.g. 512KiB, 10MiB)", s)
			}
			return ByteSize(n * u.mult), nil
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("invalid size %q (want e.g. 512KiB, 10MiB)", s)
	}
	return ByteSize(n), nil
}

// UnmarshalText implements encoding.TextUnmarshaler.
func (b *ByteSize) UnmarshalText(text []byte) error {
	v, err := ParseByteSize(string(text))
	if err != nil {
		return err
	}
	*b = v
	return nil
}

// UnmarshalYAML decodes a YAML integer or string; anything else (a list,
// a mapping) is refused at its position rather than with the YAML
// library's position-less "does not implemented Unmarshaler".
func (b *ByteSize) UnmarshalYAML(n ast.Node) error {
	var text string
	switch n := n.(type) {
	case *ast.StringNode:
		text = n.Value // after ${VAR} expansion
	case *ast.IntegerNode:
		text = n.GetToken().Value
	default:
		return &safeyaml.Error{Token: n.GetToken(), Msg: fmt.Sprintf("expected a size such as 512KiB or 10MiB, got %s", safeyaml.NodeKind(n))}
	}
	v, err := ParseByteSize(text)
	if err != nil {
		return &safeyaml.Error{Token: n.GetToken(), Msg: err.Error()}
	}
	*b = v
	return nil
}

// MarshalText implements encoding.TextMarshaler.
func (b ByteSize) MarshalText() ([]byte, error) { return []byte(strconv.FormatInt(int64(b), 10)), nil }
