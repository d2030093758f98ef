package provider

import (
	"context"
	"errors"
	"net/http"
)

// responsesAPI is OpenAI's responses API, POST /v1/responses.
//
// A request names a model, its input (a string or a list of messages or
// content parts, whose text is the prompt with the instructions) and at
// most max_output_tokens output tokens (else Options.MaxOutputTokens). The
// answer is a response object with one output message and usage
// input_tokens, output_tokens and total_tokens; its status is "completed",
// or "incomplete" with incomplete_details.reason "max_output_tokens" when
// the output reached its maximum. With "stream": true it is a stream of
// events, each an "event:" line and a "data:" line with its type and
// sequence_number: response.created, response.in_progress,
// response.output_item.added, response.content_part.added,
// response.output_text.delta (one per chunk of text),
// response.output_text.done, response.content_part.done,
// response.output_item.done, then response.completed — or
// response.incomplete — carrying the whole response with its usage.
type responsesAPI struct{ openAI }

func (responsesAPI) parse(body []byte, o Options) (request, error) {
	var in struct {
		Model           string `json:"model"`
		Input           *texts `json:"input"`
		Instructions    texts  `json:"instructions"`
		MaxOutputTokens *int64 `json:"max_output_tokens"`
		Stream          bool   `json:"stream"`
	}
	if err := parseOpenAI(body, &in, &in.Model); err != nil {
		return request{}, err
	}
	if in.Input == nil {
		return request{}, errors.New("input: required")
	}
	maxOut, err := maxTokens(o, "max_output_tokens", in.MaxOutputTokens)
	if err != nil {
		return request{}, err
	}
	return request{model: in.Model, prompt: append(in.Instructions, *in.Input...), maxOut: maxOut, stream: in.Stream}, nil
}

func (a responsesAPI) answer(ctx context.Context, w http.ResponseWriter, c *call) {
	if c.req.stream {
		a.stream(ctx, w, c)
		return
	}
	if !c.waitFor(ctx, 1, 1) {
		return
	}
	c.done()
	text := c.gen.text()
	writeJSON(w, http.StatusOK, a.response(c, responseStatus(c), []obj{responseMessage(c, responseStatus(c), &text)}, responseUsage(c)))
}

// stream writes the answer as events spread over the call's latency.
func (a responsesAPI) stream(ctx context.Context, w http.ResponseWriter, c *call) {
	sse := startSSE(w)
	seq := 0
	event := func(typ string, fields obj) {
		fields["type"], fields["sequence_number"] = typ, seq
		seq++
		sse.event(typ, fields)
	}
	itemID := "msg_" + c.id
	part := func(fields obj) obj {
		fields["item_id"], fields["output_index"], fields["content_index"] = itemID, 0, 0
		return fields
	}
	event("response.created", obj{"response": a.response(c, "in_progress", []obj{}, nil)})
	event("response.in_progress", obj{"response": a.response(c, "in_progress", []obj{}, nil)})
	event("response.output_item.added", obj{"output_index": 0, "item": responseMessage(c, "in_progress", nil)})
	event("response.content_part.added", part(obj{"part": outputText("")}))
	chunks := c.gen.chunks()
	for i, ch := range chunks {
		if !c.waitFor(ctx, i+1, len(chunks)) || !sse.ok() {
			return
		}
		event("response.output_text.delta", part(obj{"delta": ch, "logprobs": []any{}}))
	}
	c.done()
	text, status := c.gen.text(), responseStatus(c)
	event("response.output_text.done", part(obj{"text": text, "logprobs": []any{}}))
	event("response.content_part.done", part(obj{"part": outputText(text)}))
	item := responseMessage(c, status, &text)
	event("response.output_item.done", obj{"output_index": 0, "item": item})
	event("response."+status, obj{"response": a.response(c, status, []obj{item}, responseUsage(c))})
}

// response returns a response object.
func (responsesAPI) response(c *call, status string, output []obj, usage any) obj {
	r := obj{
		"id": "resp_" + c.id, "object": "response", "created_at": c.created.Unix(), "status": status,
		"error": nil, "incomplete_details": nil, "instructions": nil, "max_output_tokens": c.req.maxOut,
		"model": c.req.model, "output": output, "parallel_tool_calls": true, "previous_response_id": nil,
		"reasoning": obj{"effort": nil, "summary": nil}, "store": true, "temperature": 1.0,
		"text": obj{"format": obj{"type": "text"}}, "tool_choice": "auto", "tools": []any{}, "top_p": 1.0,
		"truncation": "disabled", "usage": usage, "user": nil, "metadata": obj{},
	}
	if status == "incomplete" {
		r["incomplete_details"] = obj{"reason": "max_output_tokens"}
	}
	return r
}

// responseMessage returns the output message, with its text when not nil.
func responseMessage(c *call, status string, text *string) obj {
	content := []obj{}
	if text != nil {
		content = append(content, outputText(*text))
	}
	return obj{"type": "message", "id": "msg_" + c.id, "status": status, "role": "assistant", "content": content}
}

func outputText(text string) obj {
	return obj{"type": "output_text", "text": text, "annotations": []any{}, "logprobs": []any{}}
}

// responseStatus returns the final status of a call: "incomplete" when
// its output reached its maximum, else "completed".
func responseStatus(c *call) string {
	if c.truncated() {
		return "incomplete"
	}
	return "completed"
}

func responseUsage(c *call) obj {
	return obj{
		"input_tokens": c.in, "input_tokens_details": obj{"cached_tokens": 0},
		"output_tokens": c.gen.out(), "output_tokens_details": obj{"reasoning_tokens": 0},
		"total_tokens": addSaturating(c.in, c.gen.out()),
	}
}
