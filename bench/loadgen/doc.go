// Package loadgen drives HTTP load against one target and records every
// request in a histogram.
//
// Three modes:
//   - closed loop (RunClosed): a fixed number of connections, each sending
//     its next request as soon as the previous answer is read; measures
//     the maximum rate and the latency under it.
//   - open loop (RunOpen): requests are due at a constant rate, request i
//     at start + i/rate, whether or not earlier ones have returned, and
//     latency is measured from that intended send time, so queueing inside
//     the generator or the target (coordinated omission) shows up in the
//     percentiles instead of being hidden.
//   - streams (RunStreams): a fixed number of concurrent SSE streams;
//     records time to first token, the gap between tokens, and whether
//     each stream arrived whole ("data: [DONE]" after the expected final
//     delta) or truncated.
//
// It only ever talks to the URL it is given; it never retries, so every
// failure is counted.
package loadgen
