package provider

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/anthropics/anthropic-sdk-go/v2"
	"github.com/anthropics/anthropic-sdk-go/v2/option"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func anthropicClient(s *Server, hc *http.Client, opts ...option.RequestOption) anthropic.Client {
	return anthropic.NewClient(append([]option.RequestOption{
		option.WithBaseURL(s.AnthropicBaseURL("r1", "a1")), option.WithHTTPClient(hc),
		option.WithAPIKey("sk-ant-test"), option.WithMaxRetries(0),
	}, opts...)...)
}

func anthropicParams(prompt string, maxTokens int64) anthropic.MessageNewParams {
	return anthropic.MessageNewParams{
		Model: "claude-test", MaxTokens: maxTokens,
		System:   []anthropic.TextBlockParam{{Text: "be brief"}},
		Messages: []anthropic.MessageParam{anthropic.NewUserMessage(anthropic.NewTextBlock(prompt))},
	}
}

func TestAnthropicSDKMessages(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := anthropicClient(s, hc)
		m, err := c.Messages.New(ctx, anthropicParams("say something nice", 40))
		require.NoError(t, err)
		assert.Equal(t, anthropic.Model("claude-test"), m.Model)
		require.Len(t, m.Content, 1)
		assert.Equal(t, "text", m.Content[0].Type)
		assert.Equal(t, int64(5), m.Usage.InputTokens, "the system prompt and the message")
		assert.Equal(t, CountTokens(m.Content[0].Text), m.Usage.OutputTokens)
		assert.Contains(t, []anthropic.StopReason{"end_turn", "max_tokens"}, m.StopReason)

		m, err = c.Messages.New(ctx, anthropicParams("say something nice", 1))
		require.NoError(t, err)
		assert.Equal(t, anthropic.StopReason("max_tokens"), m.StopReason, "the output reached its maximum")
	})
}

func TestAnthropicSDKMessagesStream(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := anthropicClient(s, hc)
		stream := c.Messages.NewStreaming(ctx, anthropicParams("tell me a long story please", 100))
		var types []string
		var msg anthropic.Message
		var text strings.Builder
		var startInput, deltaOutput int64
		for stream.Next() {
			ev := stream.Current()
			require.NoError(t, msg.Accumulate(ev))
			if len(types) == 0 || types[len(types)-1] != ev.Type {
				types = append(types, ev.Type)
			}
			switch ev.Type {
			case "message_start":
				startInput = ev.Message.Usage.InputTokens
			case "content_block_delta":
				text.WriteString(ev.Delta.Text)
			case "message_delta":
				deltaOutput = ev.Usage.OutputTokens
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, []string{"message_start", "content_block_start", "content_block_delta", "content_block_stop", "message_delta", "message_stop"}, types,
			"ping events are skipped by the SDK")
		assert.Equal(t, int64(8), startInput, "message_start carries the input usage: the system prompt and the message")
		assert.Equal(t, CountTokens(text.String()), deltaOutput, "message_delta carries the output usage")
		assert.Equal(t, text.String(), msg.Content[0].Text)
		assert.Equal(t, int64(8), msg.Usage.InputTokens)
		assert.Equal(t, deltaOutput, msg.Usage.OutputTokens)
	})
}

// A 429 reaches the SDK as an *anthropic.Error of type rate_limit_error
// with its request id and headers; with retries, the SDK waits and
// succeeds.
func TestAnthropicSDKRateLimited(t *testing.T) {
	forEachTransport(t, Options{Minute: 200 * time.Millisecond, Quota: Quota{RequestsPerMinute: 1, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 1}},
		func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
			c := anthropicClient(s, hc)
			_, err := c.Messages.New(ctx, anthropicParams("hi", 5))
			require.NoError(t, err)
			_, err = c.Messages.New(ctx, anthropicParams("hi", 5))
			var apiErr *anthropic.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
			assert.Equal(t, "rate_limit_error", string(apiErr.Type()))
			assert.Equal(t, "req_2", apiErr.RequestID)
			assert.NotEmpty(t, apiErr.Response.Header.Get("Retry-After"))
			assert.Equal(t, "0", apiErr.Response.Header.Get("Anthropic-Ratelimit-Requests-Remaining"))

			retrying := anthropicClient(s, hc, option.WithMaxRetries(2))
			_, err = retrying.Messages.New(ctx, anthropicParams("hi", 5))
			require.NoError(t, err, "the SDK waited as asked, then got through")
			assert.Equal(t, int64(2), s.Report()[0].Served)
		})
}
