package main

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"
)

// wardenBin is the real binary, built once for the end-to-end tests.
var wardenBin string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "warden-bin-")
	if err != nil {
		panic(err)
	}
	wardenBin = filepath.Join(dir, "warden")
	args := []string{"build", "-o", wardenBin}
	if raceEnabled {
		args = append(args, "-race")
	}
	cmd := exec.Command("go", append(args, ".")...)
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Run(); err != nil {
		os.Stderr.WriteString("building warden: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}
