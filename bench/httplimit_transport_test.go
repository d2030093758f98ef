package bench

import (
	"bytes"
	"io"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// The LLM client transport against a loopback server, beside the bare
// transport it wraps, in one run: the difference of their ns/op is the
// Transport's own cost per request — reading and keeping the body, the
// request's cost, Acquire, routing, the rate-limit headers as feedback,
// settling the usage read from the answer, Release. paired measures that
// difference pair by pair, which a loaded machine disturbs less. The
// client reads each answer whole, as an SDK does. The server answers a
// chat completion with its usage and OpenAI's rate-limit headers, and the
// limits never make a request wait.

const benchChatRequest = `{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"hello there"}]}`

const benchChatAnswer = `{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],` +
	`"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10}}`

func loopbackLLM(b *testing.B) *httptest.Server {
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("X-Ratelimit-Remaining-Requests", "1000000000")
		h.Set("X-Ratelimit-Reset-Requests", "1ms")
		h.Set("X-Ratelimit-Remaining-Tokens", "1000000000000")
		h.Set("X-Ratelimit-Reset-Tokens", "1ms")
		_, _ = io.WriteString(w, benchChatAnswer)
	}))
	b.Cleanup(srv.Close)
	return srv
}

func BenchmarkLLMTransport(b *testing.B) {
	srv := loopbackLLM(b)
	base := &http.Transport{MaxIdleConnsPerHost: 64}
	b.Cleanup(base.CloseIdleConnections)
	ls, err := concurry.NewLimitSet(httplimit.Quota{
		Requests: 1_000_000_000, Tokens: 1_000_000_000_000, Connections: 64,
	}.Limits(), concurry.WithConfig(map[string]any{httplimit.ConfigBaseURL: srv.URL}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ls.Close() })
	bare := &http.Client{Transport: base}
	limited := &http.Client{Transport: &httplimit.Transport{Base: base, Limiter: ls, API: httplimit.OpenAI{}}}
	b.Run("paired", func(b *testing.B) { pairedOverhead(b, bare, srv.URL, limited, "http://llm.invalid") })
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
		url  string
	}{
		{"bare", base, srv.URL},
		{"httplimit", limited.Transport, "http://llm.invalid"},
	} {
		client := &http.Client{Transport: c.rt}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				chatOnce(b, client, c.url)
			}
		})
		b.Run(c.name+"/parallel", func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					chatOnce(b, client, c.url)
				}
			})
		})
	}
}

// BenchmarkLLMTransportInMemory is the same exchange against an upstream
// that answers from memory: without sockets and a server goroutine to
// share the two cores with, the difference of the two ns/op is the
// Transport's own cost, with far less noise than over loopback.
func BenchmarkLLMTransportInMemory(b *testing.B) {
	ls, err := concurry.NewLimitSet(httplimit.Quota{
		Requests: 1_000_000_000, Tokens: 1_000_000_000_000, Connections: 64,
	}.Limits(), concurry.WithConfig(map[string]any{httplimit.ConfigBaseURL: "http://llm.example"}))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { _ = ls.Close() })
	for _, c := range []struct {
		name string
		rt   http.RoundTripper
	}{
		{"bare", memoryLLM{}},
		{"httplimit", &httplimit.Transport{Base: memoryLLM{}, Limiter: ls, API: httplimit.OpenAI{}}},
	} {
		client := &http.Client{Transport: c.rt}
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				chatOnce(b, client, "http://llm.invalid")
			}
		})
	}
}

// memoryLLM answers as loopbackLLM's server does, from memory.
type memoryLLM struct{}

func (memoryLLM) RoundTrip(r *http.Request) (*http.Response, error) {
	if r.Body != nil {
		_, _ = io.Copy(io.Discard, r.Body)
		_ = r.Body.Close()
	}
	h := http.Header{}
	h.Set("Content-Type", "application/json")
	h.Set("X-Ratelimit-Remaining-Requests", "1000000000")
	h.Set("X-Ratelimit-Reset-Requests", "1ms")
	h.Set("X-Ratelimit-Remaining-Tokens", "1000000000000")
	h.Set("X-Ratelimit-Reset-Tokens", "1ms")
	return &http.Response{StatusCode: http.StatusOK, Header: h, ContentLength: int64(len(benchChatAnswer)),
		Body: io.NopCloser(strings.NewReader(benchChatAnswer)), Request: r}, nil
}

// pairedOverhead sends, in each iteration, one request bare and one
// through the Transport, the order alternating, and times each: on a busy
// machine the two of a pair meet the same load, so their difference is the
// Transport's own cost where separate runs' ns/op differ by more than it.
// It reports the mean and the median of the differences, and each side's
// mean.
func pairedOverhead(b *testing.B, bare *http.Client, bareURL string, limited *http.Client, limitedURL string) {
	b.ReportAllocs()
	var sumBare, sumLimited time.Duration
	var diffs []time.Duration
	for i := 0; b.Loop(); i++ {
		var d [2]time.Duration
		for j := range 2 {
			k := (i + j) % 2 // 0: bare, 1: limited
			start := time.Now()
			if k == 0 {
				chatOnce(b, bare, bareURL)
			} else {
				chatOnce(b, limited, limitedURL)
			}
			d[k] = time.Since(start)
		}
		sumBare += d[0]
		sumLimited += d[1]
		diffs = append(diffs, d[1]-d[0])
	}
	n := float64(len(diffs))
	slices.Sort(diffs)
	b.ReportMetric(float64(sumBare.Nanoseconds())/n, "bare-ns/req")
	b.ReportMetric(float64(sumLimited.Nanoseconds())/n, "httplimit-ns/req")
	b.ReportMetric(float64((sumLimited-sumBare).Nanoseconds())/n, "overhead-ns/req")
	b.ReportMetric(float64(diffs[len(diffs)/2].Nanoseconds()), "overhead-p50-ns")
}

// chatOnce sends one chat completion through c and reads its answer.
func chatOnce(b *testing.B, c *http.Client, base string) {
	resp, err := c.Post(base+"/v1/chat/completions", "application/json", bytes.NewReader([]byte(benchChatRequest)))
	if err != nil {
		b.Error(err)
		return
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	_ = resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		b.Errorf("status %d", resp.StatusCode)
	}
}
