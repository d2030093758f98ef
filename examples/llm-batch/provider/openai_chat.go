package provider

import (
	"context"
	"errors"
	"net/http"
)

// chatAPI is OpenAI's chat completions API, POST /v1/chat/completions.
//
// A request names a model and messages (whose text is the prompt: string
// contents or content parts), and at most max_completion_tokens or, if
// that is absent, max_tokens output tokens (else Options.MaxOutputTokens).
// The answer is a chat.completion with usage prompt_tokens,
// completion_tokens and total_tokens. With "stream": true it is a stream of
// chat.completion.chunk events as "data: {…}" lines: a first chunk with
// the role, chunks of content, a chunk with the finish_reason ("stop", or
// "length" when the output reached its maximum), with
// stream_options.include_usage a last chunk with no choices and the usage
// (every chunk before it has "usage": null), then "data: [DONE]".
type chatAPI struct{ openAI }

func (chatAPI) parse(body []byte, o Options) (request, error) {
	var in struct {
		Model               string  `json:"model"`
		Messages            []texts `json:"messages"`
		MaxTokens           *int64  `json:"max_tokens"`
		MaxCompletionTokens *int64  `json:"max_completion_tokens"`
		Stream              bool    `json:"stream"`
		StreamOptions       struct {
			IncludeUsage bool `json:"include_usage"`
		} `json:"stream_options"`
	}
	if err := parseOpenAI(body, &in, &in.Model); err != nil {
		return request{}, err
	}
	if len(in.Messages) == 0 {
		return request{}, errors.New("messages: expected an array of at least one message")
	}
	field := "max_completion_tokens"
	if in.MaxCompletionTokens == nil && in.MaxTokens != nil {
		field = "max_tokens"
	}
	maxOut, err := maxTokens(o, field, in.MaxCompletionTokens, in.MaxTokens)
	if err != nil {
		return request{}, err
	}
	return request{model: in.Model, prompt: flatten(in.Messages), maxOut: maxOut, stream: in.Stream, includeUsage: in.StreamOptions.IncludeUsage}, nil
}

func (a chatAPI) answer(ctx context.Context, w http.ResponseWriter, c *call) {
	if c.req.stream {
		a.stream(ctx, w, c)
		return
	}
	if !c.waitFor(ctx, 1, 1) {
		return
	}
	c.done()
	choice := obj{
		"index": 0, "logprobs": nil, "finish_reason": chatFinish(c),
		"message": obj{"role": "assistant", "content": c.gen.text(), "refusal": nil, "annotations": []any{}},
	}
	writeJSON(w, http.StatusOK, a.completion(c, "chat.completion", []obj{choice}, chatUsage(c)))
}

// stream writes the answer as chunks spread over the call's latency.
func (a chatAPI) stream(ctx context.Context, w http.ResponseWriter, c *call) {
	sse := startSSE(w)
	var usage any // null in every chunk but the last, with include_usage
	chunk := func(delta obj, finish any) obj {
		choice := obj{"index": 0, "delta": delta, "logprobs": nil, "finish_reason": finish}
		return a.completion(c, "chat.completion.chunk", []obj{choice}, usage)
	}
	sse.event("", chunk(obj{"role": "assistant", "content": "", "refusal": nil}, nil))
	parts := c.gen.chunks()
	for i, p := range parts {
		if !c.waitFor(ctx, i+1, len(parts)) || !sse.ok() {
			return
		}
		sse.event("", chunk(obj{"content": p}, nil))
	}
	c.done()
	sse.event("", chunk(obj{}, chatFinish(c)))
	if c.req.includeUsage {
		sse.event("", a.completion(c, "chat.completion.chunk", []obj{}, chatUsage(c)))
	}
	sse.raw([]byte("data: [DONE]\n\n"))
}

// completion returns a chat.completion or chat.completion.chunk. usage is
// left out of a chunk when the request did not ask for it.
func (chatAPI) completion(c *call, object string, choices []obj, usage any) obj {
	o := obj{
		"id": "chatcmpl-" + c.id, "object": object, "created": c.created.Unix(), "model": c.req.model,
		"choices": choices, "service_tier": "default", "system_fingerprint": nil,
	}
	if object == "chat.completion" || c.req.includeUsage {
		o["usage"] = usage
	}
	return o
}

func chatFinish(c *call) string {
	if c.truncated() {
		return "length"
	}
	return "stop"
}

func chatUsage(c *call) obj {
	return obj{
		"prompt_tokens": c.in, "completion_tokens": c.gen.out(), "total_tokens": addSaturating(c.in, c.gen.out()),
		"prompt_tokens_details": obj{"cached_tokens": 0, "audio_tokens": 0},
		"completion_tokens_details": obj{
			"reasoning_tokens": 0, "audio_tokens": 0, "accepted_prediction_tokens": 0, "rejected_prediction_tokens": 0,
		},
	}
}
