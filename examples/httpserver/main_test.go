package main

import (
	"bytes"
	"context"
	"net/http"
	"net/http/httptest"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func get(t *testing.T, url, key string) *http.Response {
	t.Helper()
	req, err := http.NewRequest(http.MethodGet, url, nil)
	require.NoError(t, err)
	if key != "" {
		req.Header.Set("X-Api-Key", key)
	}
	resp, err := http.DefaultClient.Do(req)
	require.NoError(t, err)
	require.NoError(t, resp.Body.Close())
	return resp
}

// The chi router limits each API key to Requests calls per Window and
// answers the one over with 429, Retry-After and the RateLimit fields;
// another key, and the health check, are not held back by it.
func TestRouterLimitsEachKey(t *testing.T) {
	a, err := newAPI()
	require.NoError(t, err)
	defer a.keyed.Close()
	srv := httptest.NewServer(a.router)
	defer srv.Close()
	defer http.DefaultClient.CloseIdleConnections()
	for range Requests {
		assert.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/hello", "alice").StatusCode)
	}
	resp := get(t, srv.URL+"/v1/hello", "alice")
	assert.Equal(t, http.StatusTooManyRequests, resp.StatusCode)
	assert.Equal(t, "20", resp.Header.Get("Retry-After"), "one call comes back every 20s")
	assert.Equal(t, `"call_count";q=3;w=60`, resp.Header.Get("RateLimit-Policy"))
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/v1/hello", "bob").StatusCode)
	assert.Equal(t, http.StatusBadRequest, get(t, srv.URL+"/v1/hello", "").StatusCode, "no key")
	assert.Equal(t, http.StatusOK, get(t, srv.URL+"/healthz", "alice").StatusCode)
}

func TestDemo(t *testing.T) {
	var stdout, stderr bytes.Buffer
	require.Equal(t, 0, run(context.Background(), []string{"-demo"}, &stdout, &stderr), stderr.String())
	assert.Equal(t, `GET /v1/hello  key "alice" 200
GET /v1/hello  key "alice" 200
GET /v1/hello  key "alice" 200
GET /v1/hello  key "alice" 429  Retry-After: 20  RateLimit: "call_count";r=0;t=20
GET /v1/hello  key "bob"  200
GET /v1/hello  key ""     400
GET /healthz   key ""     200
`, stdout.String())
}
