package provider

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/http/httptest"
	"runtime"
	"strings"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// slowQuota serves one call at a time.
var slowQuota = Quota{RequestsPerMinute: 100, InputTokensPerMinute: 10_000, OutputTokensPerMinute: 10_000, Concurrency: 1}

// openStream starts a streamed Anthropic message of up to 64 output tokens
// under ctx and returns its response, unread.
func openStream(t *testing.T, ctx context.Context, s *Server) *http.Response {
	t.Helper()
	body := message("stream this", 64)
	body["stream"] = true
	b, err := json.Marshal(body)
	require.NoError(t, err)
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, s.AnthropicBaseURL("r1", "a1")+"v1/messages", bytes.NewReader(b))
	require.NoError(t, err)
	resp, err := s.Client().Do(req)
	require.NoError(t, err)
	require.Equal(t, http.StatusOK, resp.StatusCode)
	return resp
}

// readEvent returns the next event's name.
func readEvent(t *testing.T, r *bufio.Reader) string {
	t.Helper()
	name := ""
	for {
		line, err := r.ReadString('\n')
		require.NoError(t, err)
		if n, ok := strings.CutPrefix(line, "event: "); ok {
			name = strings.TrimSpace(n)
		}
		if line == "\n" {
			return name
		}
	}
}

// A stream arrives as it is written: its deltas spread evenly over the
// call's latency, the last one at the latency exactly.
func TestTransportStreamsAsTheHandlerWrites(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: slowQuota, MinLatency: time.Second, MaxLatency: time.Second})
		start := time.Now()
		resp := openStream(t, context.Background(), s)
		defer resp.Body.Close()
		r := bufio.NewReader(resp.Body)
		var deltas []time.Duration
		for ev := ""; ev != "message_stop"; {
			if ev = readEvent(t, r); ev == "content_block_delta" {
				deltas = append(deltas, time.Since(start))
			}
		}
		require.NotEmpty(t, deltas)
		n := time.Duration(len(deltas))
		for i, at := range deltas {
			assert.Equal(t, time.Second*time.Duration(i+1)/n, at, "delta %d of %d", i+1, n)
		}
		_, err := r.ReadByte()
		assert.ErrorIs(t, err, io.EOF)
	})
}

// Closing the body of a stream ends its call at once: its connection is
// free for the next.
func TestTransportClosingTheBodyEndsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: slowQuota, MinLatency: time.Hour, MaxLatency: time.Hour})
		resp := openStream(t, context.Background(), s)
		assert.Equal(t, "message_start", readEvent(t, bufio.NewReader(resp.Body)))
		require.NoError(t, resp.Body.Close())
		synctest.Wait()
		assert.Equal(t, int64(1), s.Report()[0].Served, "the call ended")
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		defer cancel()
		resp = openStream(t, ctx, s)
		defer resp.Body.Close()
		assert.Equal(t, int64(1), s.Report()[0].MaxInFlight)
	})
}

// A call's context is its handler's: when it ends, the call returns at that
// instant and the handler ends.
func TestTransportRequestContextEndsTheCall(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: slowQuota, MinLatency: time.Hour, MaxLatency: time.Hour})
		ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
		defer cancel()
		b, _ := json.Marshal(chat("x", 1))
		req, _ := http.NewRequestWithContext(ctx, http.MethodPost, s.OpenAIBaseURL("r1", "a1")+"chat/completions", bytes.NewReader(b))
		start := time.Now()
		_, err := s.Client().Do(req)
		require.ErrorIs(t, err, context.DeadlineExceeded)
		assert.Equal(t, 100*time.Millisecond, time.Since(start))
		synctest.Wait()
		assert.Equal(t, int64(1), s.Report()[0].Served, "the handler ended")
	})
}

// Close waits for the calls in flight; when its context ends first, it
// cuts them off and returns that context's error at that instant.
func TestCloseWaitsForCallsThenCutsThemOff(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s, err := New(Options{Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: slowQuota, MinLatency: time.Second, MaxLatency: time.Second})
		require.NoError(t, err)
		resp := openStream(t, context.Background(), s)
		read := make(chan error)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			read <- err
		}()
		start := time.Now()
		require.NoError(t, s.Close(context.Background()))
		assert.Equal(t, time.Second, time.Since(start), "the stream ended on time")
		require.NoError(t, <-read)
		require.NoError(t, resp.Body.Close())

		s, err = New(Options{Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: slowQuota, MinLatency: time.Hour, MaxLatency: time.Hour})
		require.NoError(t, err)
		resp = openStream(t, context.Background(), s)
		go func() {
			_, err := io.Copy(io.Discard, resp.Body)
			read <- err
		}()
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		start = time.Now()
		require.ErrorIs(t, s.Close(ctx), context.DeadlineExceeded)
		assert.Equal(t, time.Second, time.Since(start))
		assert.Error(t, <-read, "the stream was cut off")
		require.NoError(t, resp.Body.Close())
		require.NoError(t, s.Close(context.Background()), "a second Close returns at once")
	})
}

func TestTransportFailsAfterClose(t *testing.T) {
	s, err := New(Options{Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: slowQuota})
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
	_, err = s.Client().Post(s.InvokeURL("r1", "a1"), "application/json", strings.NewReader("{}"))
	require.ErrorIs(t, err, ErrClosed, "through the *url.Error of http.Client")
	rec := httptest.NewRecorder()
	s.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/r1/a1/invoke", nil))
	assert.Equal(t, http.StatusServiceUnavailable, rec.Code, "its handler, too")
}

func TestTransportContainsAHandlerPanic(t *testing.T) {
	s := newServer(t, Options{Quota: slowQuota})
	before := memoryTransport{s, func(http.ResponseWriter, *http.Request) { panic("boom") }}
	_, err := (&http.Client{Transport: before}).Get(s.URL)
	require.ErrorIs(t, err, ErrHandlerPanic)
	assert.ErrorContains(t, err, "boom")

	after := memoryTransport{s, func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte("partial"))
		panic("late")
	}}
	resp, err := (&http.Client{Transport: after}).Get(s.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	_, err = io.ReadAll(resp.Body)
	require.ErrorIs(t, err, ErrHandlerPanic)

	// A handler that answers nothing answers 200 with an empty body.
	silent := memoryTransport{s, func(http.ResponseWriter, *http.Request) {}}
	resp, err = (&http.Client{Transport: silent}).Get(s.URL)
	require.NoError(t, err)
	defer resp.Body.Close()
	assert.Equal(t, http.StatusOK, resp.StatusCode)
}

// A tokenizer that panics or calls runtime.Goexit costs its call a 500,
// and the Server serves on.
func TestTokenizerFailuresAreContained(t *testing.T) {
	for name, count := range map[string]func(string) int64{
		"panic":  func(string) int64 { panic("tokenizer bug") },
		"Goexit": func(string) int64 { runtime.Goexit(); return 0 },
	} {
		t.Run(name, func(t *testing.T) {
			s := newServer(t, Options{Quota: slowQuota, CountTokens: count})
			for range 2 {
				resp, body := post(t, s.Client(), s.OpenAIBaseURL("r1", "a1")+"chat/completions", chat("x", 1))
				require.Equal(t, http.StatusInternalServerError, resp.StatusCode)
				assert.Equal(t, "server_error", decode[struct{ Error map[string]any }](t, body).Error["type"])
				assert.Contains(t, string(body), "tokenizer failed")
			}
			_, err := countTokens(count, texts{"x"})
			assert.ErrorIs(t, err, ErrTokenizerFailed)
		})
	}
}

func TestRequestBodyTooLarge(t *testing.T) {
	s := newServer(t, Options{Quota: slowQuota, MaxRequestBytes: 100})
	resp, body := post(t, s.Client(), s.AnthropicBaseURL("r1", "a1")+"v1/messages", message(strings.Repeat("word ", 30), 1))
	assert.Equal(t, http.StatusRequestEntityTooLarge, resp.StatusCode)
	assert.Equal(t, "request_too_large", decode[struct{ Error map[string]any }](t, body).Error["type"])
}

func TestSentinelsMatchThroughWrapping(t *testing.T) {
	for _, e := range []error{ErrInvalidOptions, ErrClosed, ErrHandlerPanic, ErrTokenizerFailed} {
		assert.True(t, errors.Is(errors.Join(errors.New("x"), e), e))
		assert.True(t, strings.HasPrefix(e.Error(), "concurry: provider: "), e.Error())
	}
}
