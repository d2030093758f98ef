package httplimit

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// RemoteIP returns an Identity func that limits by client IP address. The
// address is the connection's peer (r.RemoteAddr); when the peer is one of
// the trusted proxies, the X-Forwarded-For list is read from its end and the
// first address that is not a trusted proxy is the client (a trusted peer
// that sends no X-Forwarded-For is the client itself). Without trusted
// proxies X-Forwarded-For is ignored, since any client can send it. IPv6
// clients are identified by their /64 prefix (one host usually owns one),
// IPv4 clients by their address.
func RemoteIP(trustedProxies ...netip.Prefix) func(*http.Request) (string, error) {
	trusted := func(a netip.Addr) bool {
		for _, p := range trustedProxies {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	return func(r *http.Request) (string, error) {
		host, _, err := net.SplitHostPort(r.RemoteAddr)
		if err != nil {
			host = r.RemoteAddr
		}
		addr, err := netip.ParseAddr(host)
		if err != nil {
			return "", fmt.Errorf("remote address %q: %w", r.RemoteAddr, err)
		}
		if addr.Is4() && len(trustedProxies) == 0 {
			return host, nil // its own canonical form: ParseAddr takes no other
		}
		addr = addr.Unmap()
		if xff := r.Header.Values("X-Forwarded-For"); len(xff) > 0 && trusted(addr) {
			hops := strings.Split(strings.Join(xff, ","), ",")
			for i := len(hops) - 1; i >= 0; i-- {
				a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
				if err != nil {
					return "", fmt.Errorf("X-Forwarded-For %q: %w", hops[i], err)
				}
				addr = a.Unmap()
				if !trusted(addr) {
					break
				}
			}
		}
		if addr.Is6() {
			p, _ := addr.Prefix(64)
			return p.String(), nil
		}
		return addr.String(), nil
	}
}

// Header returns an Identity func that limits by the value of a request
// header, such as an API key ("X-Api-Key") or "Authorization". A request
// without it is an error (400 by default).
func Header(name string) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		if v := r.Header.Get(name); v != "" {
			return v, nil
		}
		return "", fmt.Errorf("no %s header", name)
	}
}

// ContextValue returns an Identity func that limits by a string an earlier
// middleware (authentication) stored in the request's context under key. A
// request without it is an error.
func ContextValue(key any) func(*http.Request) (string, error) {
	return func(r *http.Request) (string, error) {
		if v, ok := r.Context().Value(key).(string); ok && v != "" {
			return v, nil
		}
		return "", errors.New("no identity in the request's context")
	}
}
