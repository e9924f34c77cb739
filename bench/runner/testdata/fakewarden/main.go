// Command fakewarden stands in for cmd/warden in the runner's tests: it
// accepts `serve --config FILE`, rejects the config keys a build without
// those features would reject (audit, identity: like Warden's strict
// loader, naming the key), and otherwise proxies every request to the
// first route's upstream and answers /readyz on admin_listen.
package main

import (
	"fmt"
	"net/http"
	"net/http/httputil"
	"net/url"
	"os"

	"github.com/goccy/go-yaml"
)

func main() {
	if len(os.Args) < 4 || os.Args[1] != "serve" || os.Args[2] != "--config" {
		fmt.Fprintln(os.Stderr, "usage: fakewarden serve --config FILE")
		os.Exit(2)
	}
	file := os.Args[3]
	b, err := os.ReadFile(file)
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakewarden:", err)
		os.Exit(1)
	}
	var cfg struct {
		Listen      string           `yaml:"listen"`
		AdminListen string           `yaml:"admin_listen"`
		Routes      []map[string]any `yaml:"routes"`
	}
	var all map[string]any
	if err := yaml.Unmarshal(b, &cfg); err != nil || yaml.Unmarshal(b, &all) != nil {
		fmt.Fprintln(os.Stderr, "fakewarden: bad config:", err)
		os.Exit(1)
	}
	for _, k := range []string{"audit", "identity", "policy", "masking"} {
		if _, ok := all[k]; ok {
			fmt.Fprintf(os.Stderr, "fakewarden: %s:1:1: %s: unknown key %q (misspelled, or not valid here)\n", file, k, k)
			os.Exit(1)
		}
	}
	up, err := url.Parse(fmt.Sprint(cfg.Routes[0]["upstream"]))
	if err != nil {
		fmt.Fprintln(os.Stderr, "fakewarden:", err)
		os.Exit(1)
	}
	rp := &httputil.ReverseProxy{Rewrite: func(pr *httputil.ProxyRequest) { pr.SetURL(up) }}
	go func() {
		admin := http.NewServeMux()
		admin.HandleFunc("GET /readyz", func(http.ResponseWriter, *http.Request) {})
		_ = http.ListenAndServe(cfg.AdminListen, admin)
	}()
	_ = http.ListenAndServe(cfg.Listen, http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = http.NewResponseController(w).EnableFullDuplex()
		rp.ServeHTTP(w, r)
	}))
}
