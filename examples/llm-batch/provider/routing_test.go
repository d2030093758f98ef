package provider

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// served returns the calls served per "region/account".
func served(s *Server) map[string]int64 {
	out := map[string]int64{}
	for _, r := range s.Report() {
		if r.Served > 0 {
			out[r.Region+"/"+r.Account] = r.Served
		}
	}
	return out
}

func TestRoutingByPathHostAndKey(t *testing.T) {
	s := newServer(t, Options{Regions: []string{"r1", "r2"}, Accounts: []string{"a1", "a2"}, Quota: sdkQuota})
	c := s.Client()
	for _, tc := range []struct {
		name, url string
		body      any
		headers   []string
	}{
		{"path", s.OpenAIBaseURL("r2", "a2") + "chat/completions", chat("x", 1), nil},
		{"host and x-api-key", "http://r2.provider.invalid/v1/messages", message("x", 1), []string{"X-Api-Key", "a1"}},
		{"host with a port and bearer", "http://r1.anything.test:8080/v1/responses", map[string]any{"model": "m", "input": "x"}, []string{"Authorization", "Bearer a2"}},
		{"path region and bearer", s.URL + "/r1/v1/chat/completions", chat("x", 1), []string{"Authorization", "bearer a1"}},
		{"plain endpoint", s.InvokeURL("r1", "a1"), InvokeRequest{Prompt: "x", MaxTokens: 1}, nil},
	} {
		resp, body := post(t, c, tc.url, tc.body, tc.headers...)
		require.Equal(t, http.StatusOK, resp.StatusCode, "%s: %s", tc.name, body)
	}
	assert.Equal(t, map[string]int64{"r2/a2": 1, "r2/a1": 1, "r1/a2": 1, "r1/a1": 2}, served(s))
}

func TestRoutingImpliesTheOnlyRegion(t *testing.T) {
	s := newServer(t, Options{Accounts: []string{"a1", "a2"}, Quota: sdkQuota})
	resp, _ := post(t, s.Client(), s.URL+"/v1/chat/completions", chat("x", 1), "Authorization", "Bearer a2")
	require.Equal(t, http.StatusOK, resp.StatusCode)
	assert.Equal(t, map[string]int64{"r1/a2": 1}, served(s))
}

// Requests that name no API, region or account are refused in the API's
// error shape, and cost no account anything.
func TestRoutingRefusals(t *testing.T) {
	s := newServer(t, Options{Regions: []string{"r1", "r2"}, Quota: sdkQuota})
	c := s.Client()
	for _, tc := range []struct {
		name, url string
		headers   []string
		status    int
		errorType string // OpenAI's error.type, or Anthropic's error.type for /v1/messages
	}{
		{"no API", s.URL + "/r1/a1/v1/embeddings", nil, http.StatusNotFound, "invalid_request_error"},
		{"unknown region", s.URL + "/r9/a1/v1/chat/completions", nil, http.StatusNotFound, "invalid_request_error"},
		{"unknown account", s.URL + "/r1/a9/v1/messages", nil, http.StatusNotFound, "not_found_error"},
		{"no region", "http://provider.invalid/v1/chat/completions", []string{"Authorization", "Bearer a1"}, http.StatusNotFound, "invalid_request_error"},
		{"no key", s.URL + "/r1/v1/messages", nil, http.StatusUnauthorized, "authentication_error"},
		{"unknown key", s.URL + "/r1/v1/chat/completions", []string{"Authorization", "Bearer sk-nope"}, http.StatusUnauthorized, "invalid_request_error"},
		{"plain endpoint without an account", s.URL + "/r1/invoke", nil, http.StatusNotFound, ""},
		{"too deep", s.URL + "/r1/a1/x/v1/chat/completions", nil, http.StatusNotFound, "invalid_request_error"},
	} {
		resp, body := post(t, c, tc.url, chat("x", 1), tc.headers...)
		assert.Equal(t, tc.status, resp.StatusCode, tc.name)
		if tc.errorType == "" {
			continue
		}
		e := decode[struct{ Error map[string]any }](t, body).Error
		assert.Equal(t, tc.errorType, e["type"], "%s: %s", tc.name, body)
	}
	req, err := http.NewRequest(http.MethodGet, s.OpenAIBaseURL("r1", "a1")+"chat/completions", nil)
	require.NoError(t, err)
	resp, err := c.Do(req)
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, http.StatusMethodNotAllowed, resp.StatusCode)
	assert.Empty(t, served(s))
	for _, r := range s.Report() {
		assert.Zero(t, r.Rejected)
	}
}

// A request that cannot be parsed is a 400 in the API's shape, charging
// nothing.
func TestBadRequests(t *testing.T) {
	s := newServer(t, Options{Quota: sdkQuota, MaxOutputTokens: 100, Minute: time.Hour})
	c := s.Client()
	base := s.BaseURL("r1", "a1")
	for name, tc := range map[string]struct {
		path string
		body any
	}{
		"chat without a model":             {"/v1/chat/completions", map[string]any{"messages": []any{"x"}}},
		"chat without messages":            {"/v1/chat/completions", map[string]any{"model": "m"}},
		"chat over the model's max output": {"/v1/chat/completions", chat("x", 101)},
		"chat of zero tokens":              {"/v1/chat/completions", chat("x", 0)},
		"responses without input":          {"/v1/responses", map[string]any{"model": "m"}},
		"messages without max_tokens":      {"/v1/messages", map[string]any{"model": "m", "messages": []any{"x"}}},
		"messages without a model":         {"/v1/messages", map[string]any{"max_tokens": 1, "messages": []any{"x"}}},
		"messages that are not JSON":       {"/v1/messages", "{"},
		"plain of zero tokens":             {"/invoke", InvokeRequest{Prompt: "x"}},
	} {
		resp, body := post(t, c, base+tc.path, tc.body)
		assert.Equal(t, http.StatusBadRequest, resp.StatusCode, "%s: %s", name, body)
	}
	rep := s.Report()[0]
	assert.Zero(t, rep.Served+rep.Rejected)
	resp, _ := post(t, c, base+"/v1/chat/completions", chat("x", 1))
	assert.Equal(t, "99", resp.Header.Get("X-Ratelimit-Remaining-Requests"), "only the last call was charged")
}
