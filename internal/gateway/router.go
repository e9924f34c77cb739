package gateway

import (
	"net"
	"net/http"
	"net/url"
	"sort"
	"strings"
	"sync/atomic"

	"github.com/wardenhq/warden/internal/config"
	"github.com/wardenhq/warden/internal/tlsutil"
)

// route is the runtime form of a configured route.
type route struct {
	name              string
	host              string // lower-case, no port; "" = any
	prefix            string
	upstream          *url.URL
	profile           string
	allowEncodedSlash bool
	stripPrefix       bool

	// upstream connection (upstream.go)
	tls        *tlsutil.Client                // nil: default transport
	transport  atomic.Pointer[http.Transport] // set when tls is
	credHeader string                         // "" = no upstream credential
	credValue  string                         // never logged
}

// router picks the route for a host and normalised path: exact host routes
// before any-host routes, then the longest matching prefix.
type router struct{ routes []*route }

func newRouter(cfg []config.Route) (*router, error) {
	rt := &router{}
	for _, c := range cfg {
		u, err := url.Parse(c.Upstream)
		if err != nil {
			return nil, err
		}
		rt.routes = append(rt.routes, &route{
			name:              c.Name,
			host:              strings.ToLower(c.Host),
			prefix:            c.PathPrefix,
			upstream:          u,
			profile:           c.Profile,
			allowEncodedSlash: c.AllowEncodedSlash,
			stripPrefix:       c.StripPrefix,
		})
		if cr := c.UpstreamCredential; cr != nil {
			r := rt.routes[len(rt.routes)-1]
			r.credHeader, r.credValue = http.CanonicalHeaderKey(cr.Header), cr.Value
		}
	}
	sort.SliceStable(rt.routes, func(i, j int) bool {
		a, b := rt.routes[i], rt.routes[j]
		if (a.host != "") != (b.host != "") {
			return a.host != ""
		}
		return len(a.prefix) > len(b.prefix)
	})
	return rt, nil
}

func (rt *router) match(host, path string) *route {
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	host = strings.ToLower(host)
	for _, r := range rt.routes {
		if r.host != "" && r.host != host {
			continue
		}
		if prefixMatch(r.prefix, path) {
			return r
		}
	}
	return nil
}

func prefixMatch(prefix, path string) bool {
	if prefix == "/" || path == prefix {
		return true
	}
	if strings.HasSuffix(prefix, "/") {
		return strings.HasPrefix(path, prefix) || path+"/" == prefix
	}
	return strings.HasPrefix(path, prefix+"/")
}
