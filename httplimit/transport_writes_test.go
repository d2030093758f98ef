package httplimit_test

import (
	"context"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// countingConn counts the writes made to a connection.
type countingConn struct {
	net.Conn
	writes *atomic.Int64
}

func (c countingConn) Write(p []byte) (int, error) {
	c.writes.Add(1)
	return c.Conn.Write(p)
}

// TestTransportWritesARequestAsTheBareTransportDoes sends the same POST
// over a real connection, bare and through the Transport: the Transport
// sends it in as many writes (headers and the body it read together), not
// one more for headers flushed ahead of a body of unknown kind.
func TestTransportWritesARequestAsTheBareTransportDoes(t *testing.T) {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		_, _ = io.WriteString(w, chatUsage(7, 3))
	}))
	defer srv.Close()
	writes := func(wrap func(http.RoundTripper) http.RoundTripper) int64 {
		var n atomic.Int64
		base := &http.Transport{DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			c, err := (&net.Dialer{}).DialContext(ctx, network, addr)
			if err != nil {
				return nil, err
			}
			return countingConn{c, &n}, nil
		}}
		defer base.CloseIdleConnections()
		c := &http.Client{Transport: wrap(base)}
		for range 3 {
			resp, err := c.Post(srv.URL+"/v1/chat/completions", "application/json", strings.NewReader(chatRequest))
			require.NoError(t, err)
			_, _ = io.Copy(io.Discard, resp.Body)
			require.NoError(t, resp.Body.Close())
		}
		return n.Load()
	}
	bare := writes(func(b http.RoundTripper) http.RoundTripper { return b })
	limited := writes(func(b http.RoundTripper) http.RoundTripper {
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: time.Hour, Capacity: 10},
			concurry.RateLimit{Key: httplimit.KeyTokens, Window: time.Hour, Capacity: 1000},
		})
		require.NoError(t, err)
		t.Cleanup(func() { ls.Close() })
		return &httplimit.Transport{Base: b, Limiter: ls, API: httplimit.OpenAI{}}
	})
	if limited != bare {
		t.Fatalf("3 requests took %d writes through the Transport, %d bare", limited, bare)
	}
}
