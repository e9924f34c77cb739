// Command warden is the Warden gateway: it sits in front of ML inference
// servers, verifies who calls, decides by policy, masks PII in responses and
// writes a tamper-evident audit record of every call.
package main

import (
	"fmt"
	"os"
)

func main() {
	if err := newRootCmd().Execute(); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(exitCode(err))
	}
}
