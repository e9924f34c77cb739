package main

import (
	"os"
	"runtime/debug"
)

// gatewayGCPercent is the garbage collector's target the gateway runs
// with when GOGC is not set: the heap may grow to three times what is live
// before a collection instead of twice. The gateway's live heap is small
// (tens of MiB: connections, caches, the log's batches) while it allocates
// per request (bodies, entries, masking), so collections were frequent and
// their CPU (background marking and assists, ~8% of the process at
// saturation) and their bursts showed in latency. Measured and explained
// in docs/decisions/030-gateway-gc-target.md; GOGC (and GOMEMLIMIT) still
// override it, as for any Go program.
const gatewayGCPercent = 200

// tuneGC applies gatewayGCPercent unless the operator set GOGC.
func tuneGC() {
	if _, set := os.LookupEnv("GOGC"); !set {
		debug.SetGCPercent(gatewayGCPercent)
	}
}
