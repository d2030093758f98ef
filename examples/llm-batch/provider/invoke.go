package provider

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
)

// InvokeRequest is the body of a call to the plain endpoint,
// POST /{region}/{account}/invoke: a prompt and the most output tokens the
// call may produce (at least 1).
type InvokeRequest struct {
	Prompt    string `json:"prompt"`
	MaxTokens int64  `json:"max_tokens"`
}

// InvokeResponse is the plain endpoint's answer: the text and the real
// usage.
type InvokeResponse struct {
	Text  string `json:"text"`
	Usage struct {
		InputTokens  int64 `json:"input_tokens"`
		OutputTokens int64 `json:"output_tokens"`
	} `json:"usage"`
}

// invokeAPI is the plain endpoint: no provider's shape, for clients written
// by hand. It carries OpenAI's rate-limit headers; its errors are plain
// text, "quota exceeded: <quota>" for a 429.
type invokeAPI struct{ openAI }

func (invokeAPI) parse(body []byte, o Options) (request, error) {
	var in InvokeRequest
	if err := json.Unmarshal(body, &in); err != nil {
		return request{}, errors.New("bad request: " + err.Error())
	}
	maxOut, err := maxTokens(o, "max_tokens", &in.MaxTokens)
	return request{prompt: texts{in.Prompt}, maxOut: maxOut}, err
}

func (invokeAPI) writeError(w http.ResponseWriter, e apiError) {
	msg := e.message
	if e.kind == errRateLimit || e.kind == errRequestTooLarge {
		msg = "quota exceeded: " + e.quota
	}
	http.Error(w, msg, e.kind.status())
}

func (invokeAPI) answer(ctx context.Context, w http.ResponseWriter, c *call) {
	if !c.waitFor(ctx, 1, 1) {
		return
	}
	c.done()
	var resp InvokeResponse
	resp.Text = c.gen.text()
	resp.Usage.InputTokens, resp.Usage.OutputTokens = c.in, c.gen.out()
	writeJSON(w, http.StatusOK, resp)
}
