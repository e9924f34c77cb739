package audit

// SetAggregateChunk sets the chunk size Aggregate reads and caches by,
// for tests that need many chunks from few entries; it returns a func
// restoring the old size.
func SetAggregateChunk(n int64) (restore func()) {
	old := aggregateChunk
	aggregateChunk = n
	return func() { aggregateChunk = old }
}
