// Package floor is the do-nothing Go reverse proxy the harness measures
// Warden against: httputil.ReverseProxy with Rewrite, a raised keep-alive
// pool and full duplex enabled on every inbound request. It adds no
// feature, so its cost is the floor any Go gateway on net/http pays; a
// Warden stage is judged by its ratio to it.
//
// Full duplex matters for streaming: without
// http.ResponseController.EnableFullDuplex the server may close the inbound
// request body while the transport is still reading it, and a few percent
// of SSE streams get truncated under concurrency (golang/go#40747,
// #57786).
package floor
