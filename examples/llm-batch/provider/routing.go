package provider

import (
	"net"
	"net/http"
	"slices"
	"strings"
)

// routes are the APIs, by the end of their path.
var routes = []struct {
	suffix string
	api    api
}{
	{"/v1/chat/completions", chatAPI{}},
	{"/v1/responses", responsesAPI{}},
	{"/v1/messages", messagesAPI{}},
	{"/invoke", invokeAPI{}},
}

// serve routes one call to its API and account (see the package comment).
func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	var a api
	var prefix string
	for _, rt := range routes {
		if p, ok := strings.CutSuffix(r.URL.Path, rt.suffix); ok {
			a, prefix = rt.api, p
			break
		}
	}
	if a == nil {
		openAI{}.writeError(w, apiError{kind: errNotFound, message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"})
		return
	}
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", http.MethodPost)
		a.writeError(w, apiError{kind: errMethod, message: "Method " + r.Method + " not allowed: use POST"})
		return
	}
	acct, e := s.route(r, prefix)
	if acct == nil {
		a.writeError(w, e)
		return
	}
	s.serveCall(w, r, a, acct)
}

// route finds the account of a call whose path has prefix before its API:
// the region is the prefix's first segment, else the host's first label,
// else the only region; the account is the prefix's second segment, else
// the one named by the API key.
func (s *Server) route(r *http.Request, prefix string) (*account, apiError) {
	var segs []string
	if p := strings.Trim(prefix, "/"); p != "" {
		segs = strings.Split(p, "/")
	}
	if len(segs) > 2 || (len(segs) < 2 && strings.HasSuffix(r.URL.Path, "/invoke")) {
		return nil, apiError{kind: errNotFound, message: "Invalid URL (" + r.Method + " " + r.URL.Path + ")"}
	}
	region := s.region(r, segs)
	if region == "" {
		return nil, apiError{kind: errNotFound, message: "no such region: name one in the path (/{region}/…) or the host ({region}.…)"}
	}
	if len(segs) == 2 {
		if acct := s.accounts[region+"/"+segs[1]]; acct != nil {
			return acct, apiError{}
		}
		return nil, apiError{kind: errNotFound, message: "no such account in region " + region + ": " + segs[1]}
	}
	key := apiKey(r)
	if key == "" {
		return nil, apiError{kind: errAuthentication, message: "missing API key: send Authorization: Bearer <key> or x-api-key: <key>"}
	}
	if acct := s.accounts[region+"/"+key]; acct != nil {
		return acct, apiError{}
	}
	return nil, apiError{kind: errAuthentication, message: "invalid API key: it must name an account"}
}

// region returns the region of a call, or "" when it names none that
// exists.
func (s *Server) region(r *http.Request, segs []string) string {
	known := func(name string) bool { return slices.Contains(s.opts.Regions, name) }
	if len(segs) > 0 {
		if known(segs[0]) {
			return segs[0]
		}
		return ""
	}
	host := r.Host
	if h, _, err := net.SplitHostPort(host); err == nil {
		host = h
	}
	if label, _, _ := strings.Cut(host, "."); known(label) {
		return label
	}
	if len(s.opts.Regions) == 1 {
		return s.opts.Regions[0]
	}
	return ""
}

// apiKey returns the key of Authorization: Bearer (the scheme in any
// case), else of x-api-key.
func apiKey(r *http.Request) string {
	if scheme, key, ok := strings.Cut(r.Header.Get("Authorization"), " "); ok && strings.EqualFold(scheme, "Bearer") {
		return strings.TrimSpace(key)
	}
	return strings.TrimSpace(r.Header.Get("X-Api-Key"))
}
