// Package nginx runs nginx as the harness's reference reverse proxy: a
// plain proxy_pass with upstream keep-alive, proxy_buffering off and HTTP/1.1
// to the upstream, from a config generated into a temporary directory and
// run as a non-daemon child process of the harness.
//
// If nginx is not installed it can install the Debian package (only as
// root with apt-get available); otherwise the caller skips the target with
// the note Find returns. It never touches the system's nginx configuration
// or service.
package nginx
