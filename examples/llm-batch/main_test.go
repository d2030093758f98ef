package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestRunPrintsJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-n", "60", "-json"}, &stdout, &stderr, true)
	require.Equal(t, 0, code, stderr.String())
	var s batch.Summary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &s), "stdout holds the JSON summary alone, without a progress bar")
	assert.Equal(t, 60, s.Completed)
	assert.Zero(t, s.RateLimited)
	assert.Len(t, s.Endpoints, 6)
	assert.Equal(t, "TokenBucket", s.Algorithm)
}

// Where stdout is no terminal — a file, a pipe, a test's buffer — it holds
// the header and the summary, and nothing of a progress bar, even when the
// caller took it for a terminal (a character device such as /dev/null).
func TestRunPrintsTextAndNoBarWithoutATerminal(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-n", "30"}, &stdout, &stderr, terminal)
		require.Equal(t, 0, code, stderr.String())
		out := stdout.String()
		assert.True(t, strings.HasPrefix(out, "llm-batch: 30 prompts to a simulated LLM provider"), out)
		assert.Contains(t, out, "peak conns")
		assert.Contains(t, out, "30 prompts answered of 30")
		assert.NotContains(t, out, "\r")
		assert.NotContains(t, out, "\x1b")
		assert.NotContains(t, out, "█")
		assert.Empty(t, stderr.String())
	}
}

// scrapeOnWrite is the stdout of a run: when a write holds want, it scrapes
// the metrics address the run printed, then, so the run is still serving.
type scrapeOnWrite struct {
	t       *testing.T
	out     strings.Builder
	want    string
	scraped []string // the bodies scraped
}

func (w *scrapeOnWrite) Write(p []byte) (int, error) {
	w.out.Write(p)
	if strings.Contains(string(p), w.want) {
		_, rest, ok := strings.Cut(w.out.String(), "Metrics: ")
		require.True(w.t, ok, "the address is printed before the batch runs")
		url, _, _ := strings.Cut(rest, " ")
		resp, err := http.Get(url)
		require.NoError(w.t, err)
		body, err := io.ReadAll(resp.Body)
		require.NoError(w.t, err)
		require.NoError(w.t, resp.Body.Close())
		require.Equal(w.t, http.StatusOK, resp.StatusCode)
		w.scraped = append(w.scraped, string(body))
	}
	return len(p), nil
}

// -metrics serves the limiter's metrics in Prometheus format while the
// batch runs: the sets' gauges from the start, and by the summary every
// decision; the summary names each endpoint's bottleneck.
func TestRunServesMetrics(t *testing.T) {
	for _, want := range []string{"Metrics: ", "prompts answered"} {
		w := &scrapeOnWrite{t: t, want: want}
		var stderr bytes.Buffer
		code := run(context.Background(), []string{"-n", "60", "-metrics", "127.0.0.1:0"}, w, &stderr, false)
		require.Equal(t, 0, code, stderr.String())
		require.Len(t, w.scraped, 1)
		m := w.scraped[0]
		assert.Contains(t, m, `concurry_limit_capacity{algorithm="token_bucket",backend="memory",key="output_tokens",set="us-east-1/123456789012",window="950ms"} 4750`)
		if want == "prompts answered" {
			assert.Regexp(t, `concurry_acquisitions_total\{[^}]*outcome="granted"[^}]*\} \d+`, m)
			assert.Contains(t, m, `concurry_pool_dispatched_total{index="0",pool="llm-batch",set="us-east-1/123456789012"}`)
			assert.Contains(t, w.out.String(), "bottleneck")
		}
	}
}

// The exit status says when the limiter broke its promise.
func TestBroken(t *testing.T) {
	s := batch.Summary{Calls: 1000}
	s.Total.ProviderRejected = 10
	assert.Empty(t, broken(batch.Config{Naive: true}, s), "a naive run promises nothing")
	assert.Contains(t, broken(batch.Config{}, s), "despite the limits")
	assert.Empty(t, broken(batch.Config{ForeignShare: 0.3}, s), "1% of the calls, retried: kept")
	s.Total.ProviderRejected = 11
	assert.Contains(t, broken(batch.Config{ForeignShare: 0.3}, s), "more than 1%")
	s.SDKErrors = 1
	assert.Contains(t, broken(batch.Config{ForeignShare: 0.3}, s), "reached the SDK")
	s.Total.ProviderRejected = 0
	assert.Empty(t, broken(batch.Config{}, s))
}
