package batch

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"

	"github.com/concurry/concurry/worker"
)

// model is the model every call names; the provider serves any.
const model = "gpt-4o-mini"

// client is a worker's value: an OpenAI SDK client (github.com/openai/openai-go)
// over the run's HTTP client, shared by every worker.
type client struct {
	sdk    openai.Client
	stream bool
}

// newClient returns an SDK client that sends through hc to base, with no
// retries of its own: the limiter's transport and the worker pool retry, and
// count what they retry.
func newClient(hc *http.Client, base string, stream bool) *client {
	return &client{
		sdk: openai.NewClient(option.WithHTTPClient(hc), option.WithBaseURL(base),
			option.WithAPIKey("sk-batch"), option.WithMaxRetries(0)),
		stream: stream,
	}
}

// usage is what a call used, by the provider's count.
type usage struct{ input, output int64 }

// complete asks for an answer to p, as one body or a stream. A 429 comes
// back as a *worker.RetryAfterError wrapping ErrQuotaExceeded, with the
// wait the provider asked for; any other error response as ErrBadResponse;
// a call that got no response as ErrTransport; ctx's end as ctx's error.
func (c *client) complete(ctx context.Context, p Prompt, opts ...option.RequestOption) (usage, error) {
	params := openai.ChatCompletionNewParams{
		Model:               model,
		Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage(p.Text)},
		MaxCompletionTokens: openai.Int(p.MaxTokens),
	}
	var u usage
	var err error
	if c.stream {
		u, err = c.completeStream(ctx, params, opts)
	} else {
		var resp *openai.ChatCompletion
		if resp, err = c.sdk.Chat.Completions.New(ctx, params, opts...); err == nil {
			u = usage{resp.Usage.PromptTokens, resp.Usage.CompletionTokens}
		}
	}
	return u, classify(ctx, err)
}

// completeStream reads a streamed answer to its end; its usage is in its
// last chunk.
func (c *client) completeStream(ctx context.Context, params openai.ChatCompletionNewParams, opts []option.RequestOption) (usage, error) {
	params.StreamOptions = openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)}
	stream := c.sdk.Chat.Completions.NewStreaming(ctx, params, opts...)
	defer func() { _ = stream.Close() }()
	var u usage
	found := false
	for stream.Next() {
		if ch := stream.Current(); ch.JSON.Usage.Valid() {
			u, found = usage{ch.Usage.PromptTokens, ch.Usage.CompletionTokens}, true
		}
	}
	if err := stream.Err(); err != nil {
		return u, err
	}
	if !found {
		return u, fmt.Errorf("%w: the stream reported no usage", ErrBadResponse)
	}
	return u, nil
}

// classify maps an SDK error to the batch's sentinels (see complete).
func classify(ctx context.Context, err error) error {
	if err == nil {
		return nil
	}
	var apiErr *openai.Error
	switch {
	case errors.As(err, &apiErr) && apiErr.StatusCode == http.StatusTooManyRequests:
		var h http.Header
		if apiErr.Response != nil {
			h = apiErr.Response.Header
		}
		return worker.RetryAfter(retryAfter(h, time.Now()), fmt.Errorf("%w: %s", ErrQuotaExceeded, apiErr.Message))
	case errors.As(err, &apiErr):
		return fmt.Errorf("%w: %d %s", ErrBadResponse, apiErr.StatusCode, apiErr.Message)
	case errors.Is(err, ErrBadResponse):
		return err
	case ctx.Err() != nil:
		return ctx.Err()
	}
	return fmt.Errorf("%w: %w", ErrTransport, err)
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
