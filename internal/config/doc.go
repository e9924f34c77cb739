// Package config loads and validates Warden's YAML configuration.
//
// Decoding is strict: an unknown or misspelled key, a value of the wrong
// type, or a semantic error (missing upstream, bad URL) is reported with the
// file, line and key path it concerns. ${VAR} and ${VAR:-default} in string
// values are expanded from the environment after parsing, so a secret can
// never change the structure of the document.
//
// It must never print the value of an expanded variable in an error: those
// are usually secrets.
package config
