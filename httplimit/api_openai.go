package httplimit

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/concurry/concurry"
)

// OpenAI is the API of OpenAI and of the many services compatible with it:
// the chat completions (/v1/chat/completions) and responses (/v1/responses)
// endpoints, streaming or not.
//
// Cost asks for one call and, under KeyTokens, the estimated input tokens
// plus the request's output cap (max_tokens, max_completion_tokens or
// max_output_tokens; DefaultMaxTokens when it has none), which is how OpenAI
// counts a request against its tokens-per-minute before it runs;
// KeyInputTokens and KeyOutputTokens get the two parts. Usage reads
// usage.prompt_tokens/completion_tokens (or input_tokens/output_tokens) from
// the response, or from a stream's final chunk (chat completions with
// stream_options.include_usage) or its response.completed event (responses).
// Limits reads x-ratelimit-remaining-{requests,tokens} with their
// x-ratelimit-reset-* durations ("6m0s", "20ms").
type OpenAI struct {
	// CountTokens estimates a request's input tokens from its body; nil
	// means EstimateTokens. An over-estimate costs nothing in the end:
	// Update refunds it.
	CountTokens func(body []byte) int64
	// DefaultMaxTokens is the output cap assumed for a request that sets
	// none; 0 means 4,096.
	DefaultMaxTokens int64
}

// EstimateTokens is the default input-token estimate: the body's length in
// bytes divided by 4, rounded up — the usual rule of thumb for English text
// under the common tokenizers, and an over-estimate for a JSON body, whose
// keys and punctuation are counted too.
func EstimateTokens(body []byte) int64 { return (int64(len(body)) + 3) / 4 }

type openAIRequest struct {
	MaxTokens           *int64 `json:"max_tokens"`
	MaxCompletionTokens *int64 `json:"max_completion_tokens"`
	MaxOutputTokens     *int64 `json:"max_output_tokens"`
}

// Cost implements API.
func (o OpenAI) Cost(r *http.Request, body []byte) (concurry.Amounts, error) {
	var req openAIRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
	}
	out := o.DefaultMaxTokens
	if out <= 0 {
		out = 4096
	}
	for _, p := range []*int64{req.MaxTokens, req.MaxCompletionTokens, req.MaxOutputTokens} {
		if p != nil && *p > 0 {
			out = *p
			break
		}
	}
	count := o.CountTokens
	if count == nil {
		count = EstimateTokens
	}
	in := max(1, count(body))
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

type openAIUsage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

func (u *openAIUsage) amounts(into concurry.Amounts) bool {
	in, out := u.PromptTokens, u.CompletionTokens
	if in == nil {
		in, out = u.InputTokens, u.OutputTokens
	}
	if in == nil || out == nil {
		return false
	}
	into[KeyInputTokens], into[KeyOutputTokens], into[KeyTokens] = *in, *out, *in+*out
	return true
}

// Usage implements API.
func (OpenAI) Usage(body []byte) (concurry.Amounts, bool) {
	return bodyUsage(body, func(u *openAIUsage, into concurry.Amounts) bool { return u.amounts(into) })
}

// StreamUsage implements API.
func (OpenAI) StreamUsage(event string, data []byte, u concurry.Amounts) bool {
	if len(data) == 0 || data[0] != '{' {
		return false // [DONE]
	}
	var chunk struct {
		Usage    *openAIUsage `json:"usage"`
		Response *struct {
			Usage *openAIUsage `json:"usage"`
		} `json:"response"`
	}
	if json.Unmarshal(data, &chunk) != nil {
		return false
	}
	switch {
	case chunk.Usage != nil:
		return chunk.Usage.amounts(u)
	case chunk.Response != nil && chunk.Response.Usage != nil:
		return chunk.Response.Usage.amounts(u)
	}
	return false
}

// Limits implements API.
func (OpenAI) Limits(h http.Header, now time.Time) []Remaining {
	return remainingHeaders(h, []rateHeader{
		{concurry.CallKey, "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
		{KeyTokens, "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
	}, func(v string) (time.Time, bool) {
		d, err := time.ParseDuration(v)
		return now.Add(d), err == nil
	})
}

// rateHeader names the headers that state one key's remaining units and
// when it resets.
type rateHeader struct{ key, remaining, reset string }

// remainingHeaders reads the facts of the headers present in h; parseReset
// reads a reset header's value.
func remainingHeaders(h http.Header, headers []rateHeader, parseReset func(string) (time.Time, bool)) []Remaining {
	var out []Remaining
	for _, rh := range headers {
		n, err := strconv.ParseInt(h.Get(rh.remaining), 10, 64)
		if err != nil {
			continue // absent or malformed
		}
		r := Remaining{Key: rh.key, Remaining: n}
		if at, ok := parseReset(h.Get(rh.reset)); ok {
			r.Reset = at
		}
		out = append(out, r)
	}
	return out
}

// bodyUsage reads the "usage" object of a JSON body into amounts with add.
func bodyUsage[U any](body []byte, add func(*U, concurry.Amounts) bool) (concurry.Amounts, bool) {
	var r struct {
		Usage *U `json:"usage"`
	}
	if json.Unmarshal(body, &r) != nil || r.Usage == nil {
		return nil, false
	}
	u := concurry.Amounts{}
	return u, add(r.Usage, u)
}
