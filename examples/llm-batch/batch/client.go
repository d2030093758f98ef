package batch

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/worker"
)

// client is a worker's value: its own HTTP client, whose connections the
// pool closes when the worker ends (client is an io.Closer).
type client struct {
	http *http.Client
}

// clientFactory returns the worker pool's factory of clients of the
// provider at base. Each client opens its connection at once, so that no call
// waits for a dial between its grant and its arrival at the provider. With
// a transport (the provider's in-memory one), the clients share it and
// have nothing to dial.
func clientFactory(base string, transport http.RoundTripper) func(context.Context, int) (*client, error) {
	return func(ctx context.Context, _ int) (*client, error) {
		if transport != nil {
			return &client{http: &http.Client{Transport: transport}}, nil
		}
		c := &client{http: &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}}}
		req, err := http.NewRequestWithContext(ctx, http.MethodHead, base+"/", nil)
		if err != nil {
			return nil, err
		}
		resp, err := c.http.Do(req)
		if err != nil {
			c.Close()
			return nil, fmt.Errorf("%w: %w", ErrTransport, err)
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		return c, nil
	}
}

// Close closes the client's idle connections.
func (c *client) Close() error {
	c.http.CloseIdleConnections()
	return nil
}

// call sends p to the endpoint at url. A 429 comes back as a
// *worker.RetryAfterError wrapping ErrQuotaExceeded, with the wait the
// provider asked for; a call that got no response as ErrTransport; any other
// failure as ErrBadResponse.
func (c *client) call(ctx context.Context, url string, p Prompt) (provider.InvokeResponse, error) {
	var out provider.InvokeResponse
	body, err := json.Marshal(provider.InvokeRequest{Prompt: p.Text, MaxTokens: p.MaxTokens})
	if err != nil {
		return out, err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, url, bytes.NewReader(body))
	if err != nil {
		return out, err
	}
	req.Header.Set("Content-Type", "application/json")
	resp, err := c.http.Do(req)
	if err != nil {
		return out, fmt.Errorf("%w: %w", ErrTransport, err)
	}
	defer func() {
		_, _ = io.Copy(io.Discard, resp.Body) // so the connection is reused
		_ = resp.Body.Close()
	}()
	switch resp.StatusCode {
	case http.StatusOK:
		if err := json.NewDecoder(resp.Body).Decode(&out); err != nil {
			return out, fmt.Errorf("%w: %w", ErrBadResponse, err)
		}
		return out, nil
	case http.StatusTooManyRequests:
		msg, _ := io.ReadAll(io.LimitReader(resp.Body, 256))
		err := fmt.Errorf("%w: %s", ErrQuotaExceeded, strings.TrimSpace(string(msg)))
		return out, worker.RetryAfter(retryAfter(resp.Header, time.Now()), err)
	default:
		return out, fmt.Errorf("%w: %s", ErrBadResponse, resp.Status)
	}
}

// retryAfter returns the wait a 429 asks for: Retry-After-Ms when present
// (with a scaled minute, whole seconds are too coarse), else Retry-After,
// else 0.
func retryAfter(h http.Header, now time.Time) time.Duration {
	if ms, err := strconv.ParseInt(h.Get("Retry-After-Ms"), 10, 64); err == nil && ms >= 0 {
		return time.Duration(ms) * time.Millisecond
	}
	if d, ok := worker.ParseRetryAfter(h.Get("Retry-After"), now); ok {
		return d
	}
	return 0
}
