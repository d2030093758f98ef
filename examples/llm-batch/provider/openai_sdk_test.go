package provider

import (
	"context"
	"errors"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/openai/openai-go/v3"
	"github.com/openai/openai-go/v3/option"
	"github.com/openai/openai-go/v3/packages/param"
	"github.com/openai/openai-go/v3/responses"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// sdkQuota leaves room for every call of these tests.
var sdkQuota = Quota{RequestsPerMinute: 100, InputTokensPerMinute: 10_000, OutputTokensPerMinute: 10_000, Concurrency: 5}

func openAIClient(s *Server, hc *http.Client, opts ...option.RequestOption) openai.Client {
	return openai.NewClient(append([]option.RequestOption{
		option.WithBaseURL(s.OpenAIBaseURL("r1", "a1")), option.WithHTTPClient(hc),
		option.WithAPIKey("sk-test"), option.WithMaxRetries(0),
	}, opts...)...)
}

func TestOpenAISDKChatCompletions(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := openAIClient(s, hc)
		params := openai.ChatCompletionNewParams{
			Model:               "gpt-test",
			Messages:            []openai.ChatCompletionMessageParamUnion{openai.SystemMessage("be brief"), openai.UserMessage("say something nice")},
			MaxCompletionTokens: openai.Int(40),
		}
		r, err := c.Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		assert.Equal(t, "gpt-test", r.Model)
		require.Len(t, r.Choices, 1)
		assert.Equal(t, int64(5), r.Usage.PromptTokens, "the system and user messages")
		assert.Equal(t, CountTokens(r.Choices[0].Message.Content), r.Usage.CompletionTokens, "one word per output token")
		assert.Equal(t, r.Usage.PromptTokens+r.Usage.CompletionTokens, r.Usage.TotalTokens)
		assert.Contains(t, []string{"stop", "length"}, r.Choices[0].FinishReason)

		params.MaxCompletionTokens, params.MaxTokens = param.Opt[int64]{}, openai.Int(1)
		r, err = c.Chat.Completions.New(ctx, params)
		require.NoError(t, err)
		assert.Equal(t, int64(1), r.Usage.CompletionTokens, "max_tokens is read when max_completion_tokens is absent")
		assert.Equal(t, "length", r.Choices[0].FinishReason, "the output reached its maximum")
	})
}

func TestOpenAISDKChatCompletionsStream(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := openAIClient(s, hc)
		params := openai.ChatCompletionNewParams{
			Model:               "gpt-test",
			Messages:            []openai.ChatCompletionMessageParamUnion{openai.UserMessage("tell me a long story please")},
			MaxCompletionTokens: openai.Int(100),
			StreamOptions:       openai.ChatCompletionStreamOptionsParam{IncludeUsage: openai.Bool(true)},
		}
		stream := c.Chat.Completions.NewStreaming(ctx, params)
		var acc openai.ChatCompletionAccumulator
		var chunks []openai.ChatCompletionChunk
		for stream.Next() {
			chunk := stream.Current()
			require.True(t, acc.AddChunk(chunk))
			chunks = append(chunks, chunk)
		}
		require.NoError(t, stream.Err())
		require.Greater(t, len(chunks), 3, "role, content…, finish, usage")
		last := chunks[len(chunks)-1]
		assert.Empty(t, last.Choices, "the usage chunk has no choices")
		assert.Equal(t, int64(6), last.Usage.PromptTokens)
		for _, ch := range chunks[:len(chunks)-1] {
			assert.False(t, ch.JSON.Usage.Valid(), "usage is null before the last chunk")
		}
		assert.Equal(t, CountTokens(acc.Choices[0].Message.Content), acc.Usage.CompletionTokens)
		assert.Equal(t, last.Usage.CompletionTokens, acc.Usage.CompletionTokens)

		params.StreamOptions = openai.ChatCompletionStreamOptionsParam{}
		stream = c.Chat.Completions.NewStreaming(ctx, params)
		n := 0
		for stream.Next() {
			assert.NotEmpty(t, stream.Current().Choices, "no usage chunk without include_usage")
			n++
		}
		require.NoError(t, stream.Err())
		assert.Greater(t, n, 2)
	})
}

func TestOpenAISDKResponses(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := openAIClient(s, hc)
		params := responses.ResponseNewParams{
			Model:           "gpt-test",
			Instructions:    openai.String("be brief"),
			Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("say something nice")},
			MaxOutputTokens: openai.Int(40),
		}
		r, err := c.Responses.New(ctx, params)
		require.NoError(t, err)
		assert.Equal(t, int64(5), r.Usage.InputTokens, "the instructions and the input")
		assert.Equal(t, CountTokens(r.OutputText()), r.Usage.OutputTokens)
		assert.Equal(t, r.Usage.InputTokens+r.Usage.OutputTokens, r.Usage.TotalTokens)
		assert.Contains(t, []responses.ResponseStatus{"completed", "incomplete"}, r.Status)

		params.MaxOutputTokens = openai.Int(1)
		r, err = c.Responses.New(ctx, params)
		require.NoError(t, err)
		assert.Equal(t, responses.ResponseStatus("incomplete"), r.Status, "the output reached its maximum")
		assert.Equal(t, "max_output_tokens", r.IncompleteDetails.Reason)
	})
}

func TestOpenAISDKResponsesStream(t *testing.T) {
	forEachTransport(t, Options{Quota: sdkQuota, MaxLatency: 50 * time.Millisecond}, func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
		c := openAIClient(s, hc)
		stream := c.Responses.NewStreaming(ctx, responses.ResponseNewParams{
			Model:           "gpt-test",
			Input:           responses.ResponseNewParamsInputUnion{OfString: openai.String("tell me a long story please")},
			MaxOutputTokens: openai.Int(100),
		})
		var types []string
		var text strings.Builder
		var final responses.Response
		for i := 0; stream.Next(); i++ {
			ev := stream.Current()
			assert.Equal(t, int64(i), ev.SequenceNumber)
			if len(types) == 0 || types[len(types)-1] != ev.Type {
				types = append(types, ev.Type)
			}
			switch ev.Type {
			case "response.output_text.delta":
				text.WriteString(ev.Delta)
			case "response.completed", "response.incomplete":
				final = ev.Response
			}
		}
		require.NoError(t, stream.Err())
		assert.Equal(t, []string{
			"response.created", "response.in_progress", "response.output_item.added", "response.content_part.added",
			"response.output_text.delta", "response.output_text.done", "response.content_part.done",
			"response.output_item.done", "response." + string(final.Status),
		}, types)
		assert.Equal(t, final.OutputText(), text.String(), "the deltas make the whole text")
		assert.Equal(t, int64(6), final.Usage.InputTokens)
		assert.Equal(t, CountTokens(text.String()), final.Usage.OutputTokens)
	})
}

// A 429 reaches the SDK as an *openai.Error with the provider's body and
// headers; with retries, the SDK waits retry-after-ms and succeeds.
func TestOpenAISDKRateLimited(t *testing.T) {
	forEachTransport(t, Options{Minute: 200 * time.Millisecond, Quota: Quota{RequestsPerMinute: 1, InputTokensPerMinute: 100, OutputTokensPerMinute: 100, Concurrency: 1}},
		func(t *testing.T, ctx context.Context, s *Server, hc *http.Client) {
			params := openai.ChatCompletionNewParams{
				Model: "gpt-test", Messages: []openai.ChatCompletionMessageParamUnion{openai.UserMessage("hi")}, MaxCompletionTokens: openai.Int(5),
			}
			c := openAIClient(s, hc)
			_, err := c.Chat.Completions.New(ctx, params)
			require.NoError(t, err)
			_, err = c.Chat.Completions.New(ctx, params)
			var apiErr *openai.Error
			require.True(t, errors.As(err, &apiErr), "%v", err)
			assert.Equal(t, http.StatusTooManyRequests, apiErr.StatusCode)
			assert.Equal(t, "requests", apiErr.Type)
			assert.Equal(t, "rate_limit_exceeded", apiErr.Code)
			assert.NotEmpty(t, apiErr.Response.Header.Get("Retry-After-Ms"))
			assert.Equal(t, "0", apiErr.Response.Header.Get("X-Ratelimit-Remaining-Requests"))

			retrying := openAIClient(s, hc, option.WithMaxRetries(2))
			r, err := retrying.Chat.Completions.New(ctx, params)
			require.NoError(t, err, "the SDK waited as asked, then got through")
			assert.Equal(t, int64(1), r.Usage.PromptTokens)
			rep := s.Report()[0]
			assert.Equal(t, int64(2), rep.Served)
			assert.GreaterOrEqual(t, rep.Rejected, int64(2))
		})
}
