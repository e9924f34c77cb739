package audit

// SetSignEveryBatch switches per-batch signing (for the benchmark that
// measures its cost, and the test of what happens without it); it
// returns the function that restores it.
func SetSignEveryBatch(on bool) (restore func()) {
	old := skipBatchSigning.Swap(!on)
	return func() { skipBatchSigning.Store(old) }
}
