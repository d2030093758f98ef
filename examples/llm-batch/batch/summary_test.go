package batch

import (
	"bytes"
	"context"
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry/worker"
)

func TestThroughputFormula(t *testing.T) {
	s := Summary{
		Quota:  Quota{RequestsPerMinute: 10, InputTokensPerMinute: 1_000, OutputTokensPerMinute: 100, Concurrency: 2},
		Minute: time.Second, Wall: 4 * time.Second, WallSeconds: 4, MinuteSeconds: 1,
		Endpoints: make([]EndpointSummary, 2),
		Total:     EndpointSummary{Requests: 20, InputTokens: 2_000, OutputTokens: 500},
		Completed: 30,
	}
	s.throughput()
	// Each endpoint allows 5 minutes' quota in 4s: 50 requests, 5,000 input
	// tokens = 50 requests of 100, 500 output tokens = 20 requests of 25.
	assert.InDelta(t, 40, s.MaxRequests, 1e-9)
	assert.Equal(t, "output_tokens", s.Binding)
	assert.InDelta(t, 0.75, s.Throughput, 1e-9)
	assert.InDelta(t, 7.5, s.RequestsPerSec, 1e-9)

	var b bytes.Buffer
	require.NoError(t, s.WriteText(&b))
	assert.Contains(t, b.String(), "Throughput: 75% of the most the quotas allowed in 4.0s (40 requests; output tokens bound it)")
	assert.Contains(t, b.String(), "= 2 × min(10 / 1, 1,000 / 100.0, 100 / 25.0) × (1 + T/minute) = 2 × 4.00 × 5.00")
}

func TestGroup(t *testing.T) {
	for n, want := range map[int64]string{0: "0", 999: "999", 1_000: "1,000", 1_234_567: "1,234,567", -12_345: "-12,345"} {
		assert.Equal(t, want, group(n))
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Now()
	h := http.Header{}
	assert.Zero(t, retryAfter(h, now))
	h.Set("Retry-After", "2")
	assert.Equal(t, 2*time.Second, retryAfter(h, now))
	h.Set("Retry-After-Ms", "250")
	assert.Equal(t, 250*time.Millisecond, retryAfter(h, now), "milliseconds win")
	h.Set("Retry-After-Ms", "soon")
	assert.Equal(t, 2*time.Second, retryAfter(h, now))
}

func TestClientClassifiesFailures(t *testing.T) {
	p, err := startProvider(Config{
		Regions: []string{"r"}, Accounts: []string{"a"}, Minute: time.Hour, MaxTokens: 5,
		Quota: Quota{RequestsPerMinute: 1, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 1},
	})
	require.NoError(t, err)
	defer func() { require.NoError(t, p.Close(context.Background())) }()
	transport := &http.Transport{}
	defer transport.CloseIdleConnections()
	hc := &http.Client{Transport: transport}
	ctx := context.Background()
	prompt := Prompt{Text: "one two", InputTokens: 2, MaxTokens: 5}

	for _, stream := range []bool{false, true} {
		c := newClient(hc, p.OpenAIBaseURL("r", "a"), stream)
		u, err := c.complete(ctx, prompt)
		if !stream {
			require.NoError(t, err)
			assert.Equal(t, int64(2), u.input)
			assert.Positive(t, u.output)
			continue
		}
		require.ErrorIs(t, err, ErrQuotaExceeded, "one request per hour")
		assert.True(t, retryable(err))
		var ra *worker.RetryAfterError
		require.ErrorAs(t, err, &ra)
		assert.InDelta(t, time.Hour.Seconds(), ra.Wait.Seconds(), 2, "the provider's Retry-After-Ms")
	}

	_, err = newClient(hc, p.OpenAIBaseURL("nowhere", "a"), false).complete(ctx, prompt)
	require.ErrorIs(t, err, ErrBadResponse)
	assert.False(t, retryable(err))

	_, err = newClient(hc, "http://127.0.0.1:1/v1/", false).complete(ctx, prompt)
	require.ErrorIs(t, err, ErrTransport)
	assert.True(t, retryable(err))
}
