package provider

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strconv"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/require"
)

// newServer returns a Server with no socket for o, in region r1 and account
// a1 unless o names others, closed when the test ends. Inside a synctest
// bubble, call it there.
func newServer(t *testing.T, o Options) *Server {
	t.Helper()
	if o.Regions == nil {
		o.Regions = []string{"r1"}
	}
	if o.Accounts == nil {
		o.Accounts = []string{"a1"}
	}
	s, err := New(o)
	require.NoError(t, err)
	t.Cleanup(func() { require.NoError(t, s.Close(context.Background())) })
	return s
}

// post sends body as JSON to url with headers (name, value, name,
// value, …) through c, and returns the response with its whole body.
func post(t *testing.T, c *http.Client, url string, body any, headers ...string) (*http.Response, []byte) {
	t.Helper()
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(context.Background(), http.MethodPost, url, bytes.NewReader(b))
	require.NoError(t, err)
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	resp, err := c.Do(req)
	require.NoError(t, err)
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	require.NoError(t, err)
	return resp, data
}

// chat returns the body of an OpenAI chat completion of prompt, at most
// maxTokens output tokens.
func chat(prompt string, maxTokens int64) map[string]any {
	return map[string]any{
		"model": "gpt-test", "max_completion_tokens": maxTokens,
		"messages": []any{map[string]any{"role": "user", "content": prompt}},
	}
}

// message returns the body of an Anthropic message of prompt, at most
// maxTokens output tokens.
func message(prompt string, maxTokens int64) map[string]any {
	return map[string]any{
		"model": "claude-test", "max_tokens": maxTokens,
		"messages": []any{map[string]any{"role": "user", "content": []any{map[string]any{"type": "text", "text": prompt}}}},
	}
}

// decode returns data decoded as JSON into a T.
func decode[T any](t *testing.T, data []byte) T {
	t.Helper()
	var v T
	require.NoError(t, json.Unmarshal(data, &v), "%s", data)
	return v
}

func itoa(n int64) string { return strconv.FormatInt(n, 10) }

// forEachTransport runs f twice: in a synctest bubble against a Server
// reached through its Transport, and in real time against one serving on
// a loopback socket, reached through a plain http.Client, with a 30s
// deadline.
func forEachTransport(t *testing.T, o Options, f func(t *testing.T, ctx context.Context, s *Server, hc *http.Client)) {
	t.Run("memory", func(t *testing.T) {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t, o)
			f(t, context.Background(), s, s.Client())
		})
	})
	t.Run("socket", func(t *testing.T) {
		o := o
		if o.Regions == nil {
			o.Regions, o.Accounts = []string{"r1"}, []string{"a1"}
		}
		s, err := Start(o)
		require.NoError(t, err)
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		hc := &http.Client{Transport: &http.Transport{}}
		t.Cleanup(func() {
			hc.CloseIdleConnections()
			require.NoError(t, s.Close(ctx))
			cancel()
		})
		f(t, ctx, s, hc)
	})
}

func atoi(t *testing.T, s string) int64 {
	t.Helper()
	n, err := strconv.ParseInt(s, 10, 64)
	require.NoError(t, err, "%q", s)
	return n
}
