// Package tlsutil builds the TLS configurations Warden serves and dials
// with, from PEM files that are reloaded when they change.
//
// Listeners (gateway and admin) serve a certificate from a cert/key file
// pair (ServerConfig); upstream connections verify the model server against
// a CA bundle and may present a client certificate (ClientConfig). Files
// are watched through their directories, so an editor's rename, a
// cert-manager rewrite and the Kubernetes secret-volume symlink swap
// ("..data") are all seen; a slow poll catches anything a watch missed.
// A reload that fails (a half-written pair, a key that does not match)
// keeps the previous certificate in service and is logged.
//
// It must never accept a TLS version below 1.2, never disable certificate
// verification, and never log key material.
package tlsutil
