// Package upstream is the benchmark harness's stand-in for an inference
// server: a fake OpenAI-compatible API (chat completions as ~1 KB JSON with
// or without PII, SSE streams of N deltas at a fixed pace, embeddings) and
// a loopback OIDC issuer (discovery document, JWKS, RS256 access tokens)
// for the identity stage.
//
// Responses are precomputed so the upstream costs as little CPU as
// possible and the same for every target; what differs between targets is
// then the proxy in front of it. It never runs a model, never listens on
// anything but the address it is given (the harness uses 127.0.0.1), and
// its keys are generated per process and never written to disk.
package upstream
