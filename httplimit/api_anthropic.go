package httplimit

import (
	"encoding/json"
	"net/http"
	"time"

	"github.com/concurry/concurry"
)

// Anthropic is the API of Anthropic's messages endpoint (/v1/messages),
// streaming or not.
//
// Cost asks for one call, the estimated input tokens under KeyInputTokens,
// max_tokens under KeyOutputTokens, and their sum under KeyTokens. Usage
// reads usage.input_tokens (plus cache_creation_input_tokens, which count
// against the input rate) and usage.output_tokens, from the response or from
// a stream's message_start and message_delta events. Limits reads
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-remaining
// with their RFC 3339 -reset instants.
type Anthropic struct {
	// CountTokens estimates a request's input tokens from its body; nil
	// means EstimateTokens.
	CountTokens func(body []byte) int64
}

// Cost implements API.
func (a Anthropic) Cost(r *http.Request, body []byte) (concurry.Amounts, error) {
	var req struct {
		MaxTokens int64 `json:"max_tokens"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
	}
	count := a.CountTokens
	if count == nil {
		count = EstimateTokens
	}
	in, out := max(1, count(body)), max(1, req.MaxTokens)
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

type anthropicUsage struct {
	InputTokens   *int64 `json:"input_tokens"`
	CacheCreation int64  `json:"cache_creation_input_tokens"`
	OutputTokens  *int64 `json:"output_tokens"`
}

// add records what u says into into; found reports whether it said anything.
func (u *anthropicUsage) add(into concurry.Amounts) bool {
	found := false
	if u.InputTokens != nil {
		into[KeyInputTokens] = *u.InputTokens + u.CacheCreation
		found = true
	}
	if u.OutputTokens != nil {
		into[KeyOutputTokens] = *u.OutputTokens // cumulative in a stream
		found = true
	}
	if found {
		into[KeyTokens] = into[KeyInputTokens] + into[KeyOutputTokens]
	}
	return found
}

// Usage implements API.
func (Anthropic) Usage(body []byte) (concurry.Amounts, bool) {
	return bodyUsage(body, func(u *anthropicUsage, into concurry.Amounts) bool { return u.add(into) })
}

// StreamUsage implements API.
func (Anthropic) StreamUsage(event string, data []byte, u concurry.Amounts) bool {
	var e struct {
		Type    string          `json:"type"`
		Usage   *anthropicUsage `json:"usage"`
		Message *struct {
			Usage *anthropicUsage `json:"usage"`
		} `json:"message"`
	}
	if json.Unmarshal(data, &e) != nil {
		return false
	}
	switch {
	case e.Type == "message_start" && e.Message != nil && e.Message.Usage != nil:
		return e.Message.Usage.add(u)
	case e.Type == "message_delta" && e.Usage != nil:
		return e.Usage.add(u)
	}
	return false
}

// Limits implements API.
func (Anthropic) Limits(h http.Header, _ time.Time) []Remaining {
	return remainingHeaders(h, []rateHeader{
		{concurry.CallKey, "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"},
		{KeyTokens, "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"},
		{KeyInputTokens, "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"},
		{KeyOutputTokens, "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"},
	}, func(v string) (time.Time, bool) {
		at, err := time.Parse(time.RFC3339, v)
		return at, err == nil
	})
}
