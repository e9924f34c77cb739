package main

import (
	"os"
	"runtime/debug"
	"testing"
)

func TestTuneGC(t *testing.T) {
	orig := debug.SetGCPercent(100)
	t.Cleanup(func() { debug.SetGCPercent(orig) })
	gcPercent := func() int { p := debug.SetGCPercent(-1); debug.SetGCPercent(p); return p }

	t.Run("unset", func(t *testing.T) {
		t.Setenv("GOGC", "")
		os.Unsetenv("GOGC")
		debug.SetGCPercent(100)
		tuneGC()
		if got := gcPercent(); got != gatewayGCPercent {
			t.Fatalf("GOGC unset: GC percent %d, want %d", got, gatewayGCPercent)
		}
	})
	t.Run("operator's GOGC wins", func(t *testing.T) {
		t.Setenv("GOGC", "50")
		debug.SetGCPercent(50) // what the runtime read from GOGC at start
		tuneGC()
		if got := gcPercent(); got != 50 {
			t.Fatalf("GOGC=50: GC percent %d, want 50 (left alone)", got)
		}
	})
}
