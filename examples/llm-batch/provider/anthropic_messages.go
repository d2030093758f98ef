package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// messagesAPI is Anthropic's messages API, POST /v1/messages.
//
// A request names a model, messages (whose text is the prompt with the
// system prompt: string contents or content blocks) and max_tokens, which
// is required. The answer is a message with one text block, stop_reason
// "end_turn" (or "max_tokens" when the output reached its maximum) and
// usage input_tokens and output_tokens. With "stream": true it is a stream
// of events, each an "event:" line and a "data:" line: message_start (the
// message with no content and the input usage; output_tokens is 1, a
// placeholder, as in the real API), content_block_start, ping,
// content_block_delta (one text_delta per chunk of text),
// content_block_stop, message_delta (the stop_reason and the usage, whose
// output_tokens is the total), then message_stop. Errors are
// {"type":"error","error":{"type","message"}}, of type rate_limit_error for
// a 429.
type messagesAPI struct{}

func (messagesAPI) parse(body []byte, o Options) (request, error) {
	var in struct {
		Model     string  `json:"model"`
		Messages  []texts `json:"messages"`
		System    texts   `json:"system"`
		MaxTokens *int64  `json:"max_tokens"`
		Stream    bool    `json:"stream"`
	}
	switch err := json.Unmarshal(body, &in); {
	case err != nil:
		return request{}, errors.New("invalid JSON body: " + err.Error())
	case in.Model == "":
		return request{}, errors.New("model: Field required")
	case in.MaxTokens == nil:
		return request{}, errors.New("max_tokens: Field required")
	case len(in.Messages) == 0:
		return request{}, errors.New("messages: at least one message is required")
	}
	maxOut, err := maxTokens(o, "max_tokens", in.MaxTokens)
	if err != nil {
		return request{}, err
	}
	return request{model: in.Model, prompt: append(in.System, flatten(in.Messages)...), maxOut: maxOut, stream: in.Stream}, nil
}

func (messagesAPI) writeLimits(h http.Header, s snapshot) { writeAnthropicLimits(h, s) }

func (messagesAPI) writeRequestID(h http.Header, id string) { h.Set("Request-Id", "req_"+id) }

// writeError writes Anthropic's error body.
func (messagesAPI) writeError(w http.ResponseWriter, e apiError) {
	typ := [...]string{
		errInvalidRequest: "invalid_request_error", errAuthentication: "authentication_error",
		errNotFound: "not_found_error", errMethod: "invalid_request_error", errTooLarge: "request_too_large",
		errRateLimit: "rate_limit_error", errRequestTooLarge: "rate_limit_error", errInternal: "api_error",
	}[e.kind]
	writeJSON(w, e.kind.status(), obj{"type": "error", "error": obj{"type": typ, "message": e.message}})
}

func (a messagesAPI) answer(ctx context.Context, w http.ResponseWriter, c *call) {
	if c.req.stream {
		a.stream(ctx, w, c)
		return
	}
	if !c.waitFor(ctx, 1, 1) {
		return
	}
	c.done()
	text := obj{"type": "text", "text": c.gen.text()}
	writeJSON(w, http.StatusOK, a.message(c, []obj{text}, stopReason(c), messagesUsage(c.in, c.gen.out())))
}

// stream writes the answer as events spread over the call's latency.
func (a messagesAPI) stream(ctx context.Context, w http.ResponseWriter, c *call) {
	sse := startSSE(w)
	event := func(typ string, fields obj) {
		fields["type"] = typ
		sse.event(typ, fields)
	}
	event("message_start", obj{"message": a.message(c, []obj{}, nil, messagesUsage(c.in, 1))})
	event("content_block_start", obj{"index": 0, "content_block": obj{"type": "text", "text": ""}})
	event("ping", obj{})
	chunks := c.gen.chunks()
	for i, ch := range chunks {
		if !c.waitFor(ctx, i+1, len(chunks)) || !sse.ok() {
			return
		}
		event("content_block_delta", obj{"index": 0, "delta": obj{"type": "text_delta", "text": ch}})
	}
	c.done()
	event("content_block_stop", obj{"index": 0})
	event("message_delta", obj{"delta": obj{"stop_reason": stopReason(c), "stop_sequence": nil}, "usage": obj{"output_tokens": c.gen.out()}})
	event("message_stop", obj{})
}

// message returns a message object.
func (messagesAPI) message(c *call, content []obj, stop any, usage obj) obj {
	return obj{
		"id": "msg_" + c.id, "type": "message", "role": "assistant", "model": c.req.model,
		"content": content, "stop_reason": stop, "stop_sequence": nil, "usage": usage,
	}
}

func stopReason(c *call) string {
	if c.truncated() {
		return "max_tokens"
	}
	return "end_turn"
}

func messagesUsage(in, out int64) obj {
	return obj{"input_tokens": in, "cache_creation_input_tokens": 0, "cache_read_input_tokens": 0, "output_tokens": out}
}
