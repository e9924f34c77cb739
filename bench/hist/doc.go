// Package hist is a small log-linear latency histogram in the spirit of
// HdrHistogram, used by the benchmark harness to record every request's
// latency without sampling.
//
// Values (nanoseconds, or any non-negative integer) below 256 are kept
// exactly; above that each power-of-two range is split into 128 linear
// buckets, so a reported percentile is within 1/128 (< 0.8 %) of the true
// value. Recording is O(1) and allocation-free. A Histogram is not safe for
// concurrent use: give each worker its own and Merge them at the end.
//
// It must never drop a value: values of 2^40 (18 minutes in ns) and more
// are counted in the top bucket, and Max stays exact.
package hist
