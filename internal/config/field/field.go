// Package field lets domain packages report a configuration error against
// the YAML key it concerns, without importing the config loader. The
// loader (package config) turns the key path into a file and line.
//
// Paths use dots and brackets relative to the section being validated,
// e.g. "issuers[0].audience"; the loader prefixes the section name.
package field

import (
	"errors"
	"fmt"
)

// Error is a validation error tied to a key path in the config file.
type Error struct {
	// Path is the key path, e.g. "issuers[0].audience".
	Path string
	// Msg says what is wrong, e.g. "is required".
	Msg string
}

func (e *Error) Error() string { return e.Path + ": " + e.Msg }

// Errorf returns an *Error for path with a formatted message.
func Errorf(path, format string, args ...any) error {
	return &Error{Path: path, Msg: fmt.Sprintf(format, args...)}
}

// Prefix re-roots every *Error inside err under prefix (joined errors are
// handled); other errors are returned as they are.
func Prefix(prefix string, err error) error {
	if err == nil {
		return nil
	}
	if j, ok := err.(interface{ Unwrap() []error }); ok {
		var out []error
		for _, e := range j.Unwrap() {
			out = append(out, Prefix(prefix, e))
		}
		return errors.Join(out...)
	}
	var fe *Error
	if errors.As(err, &fe) {
		p := prefix
		if fe.Path != "" {
			if fe.Path[0] == '[' {
				p += fe.Path
			} else {
				p += "." + fe.Path
			}
		}
		return &Error{Path: p, Msg: fe.Msg}
	}
	return err
}
