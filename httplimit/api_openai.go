package httplimit

import (
	"encoding/json"
	"net/http"
	"net/textproto"
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
	out, err := openAIMaxTokens(body)
	if err != nil {
		return nil, err
	}
	if out <= 0 {
		out = o.DefaultMaxTokens
		if out <= 0 {
			out = 4096
		}
	}
	count := o.CountTokens
	if count == nil {
		count = EstimateTokens
	}
	in := max(1, count(body))
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

// openAIMaxTokenNames are the output caps of a request, in the order Cost
// prefers them.
var openAIMaxTokenNames = []string{"max_tokens", "max_completion_tokens", "max_output_tokens"}

// openAIMaxTokens returns the first positive output cap of a request body,
// 0 when it has none.
func openAIMaxTokens(body []byte) (int64, error) {
	if len(body) == 0 {
		return 0, nil
	}
	var v [3][]byte
	if members(body, openAIMaxTokenNames, v[:]) {
		var caps [3]int64
		ok := true
		for i := range v {
			caps[i], _, ok = jsonInt(v[i]) // 0 when absent or null
			if !ok {
				break
			}
		}
		if ok {
			return firstPositive(caps[:]), nil
		}
	}
	var req openAIRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, err
	}
	var caps [3]int64
	for i, p := range []*int64{req.MaxTokens, req.MaxCompletionTokens, req.MaxOutputTokens} {
		if p != nil {
			caps[i] = *p
		}
	}
	return firstPositive(caps[:]), nil
}

// firstPositive returns the first of ns above 0, or 0.
func firstPositive(ns []int64) int64 {
	for _, n := range ns {
		if n > 0 {
			return n
		}
	}
	return 0
}

type openAIUsage struct {
	PromptTokens     *int64 `json:"prompt_tokens"`
	CompletionTokens *int64 `json:"completion_tokens"`
	InputTokens      *int64 `json:"input_tokens"`
	OutputTokens     *int64 `json:"output_tokens"`
}

// openAIUsageNames are the members of an openAIUsage, in its field order.
var openAIUsageNames = []string{"prompt_tokens", "completion_tokens", "input_tokens", "output_tokens"}

// counts returns what encoding/json read into u.
func (u *openAIUsage) counts() counts {
	var c counts
	if u != nil {
		c.present = true
		for i, p := range []*int64{u.PromptTokens, u.CompletionTokens, u.InputTokens, u.OutputTokens} {
			if p != nil {
				c.n[i], c.set[i] = *p, true
			}
		}
	}
	return c
}

// openAIAmounts puts what c, an openAIUsage, says into into, and reports
// whether it said it: prompt and completion tokens, or else input and
// output tokens.
func openAIAmounts(c *counts, into concurry.Amounts) bool {
	in, out := 0, 1
	if !c.set[in] {
		in, out = 2, 3
	}
	if !c.present || !c.set[in] || !c.set[out] {
		return false
	}
	into[KeyInputTokens], into[KeyOutputTokens], into[KeyTokens] = c.n[in], c.n[out], c.n[in]+c.n[out]
	return true
}

// Usage implements API.
func (OpenAI) Usage(body []byte) (concurry.Amounts, bool) {
	return bodyUsage[*openAIUsage](body, openAIUsageNames, openAIAmounts)
}

// usageName is the member of a body that holds its usage.
var usageName = []string{"usage"}

// openAIChunkNames are the members of a streamed chunk or event that may
// hold usage.
var openAIChunkNames = []string{"usage", "response"}

// StreamUsage implements API.
func (OpenAI) StreamUsage(event string, data []byte, u concurry.Amounts) bool {
	if len(data) == 0 || data[0] != '{' {
		return false // [DONE]
	}
	var top, resp counts
	if !scanOpenAIChunk(data, &top, &resp) {
		var chunk struct {
			Usage    *openAIUsage `json:"usage"`
			Response *struct {
				Usage *openAIUsage `json:"usage"`
			} `json:"response"`
		}
		if json.Unmarshal(data, &chunk) != nil {
			return false
		}
		top = chunk.Usage.counts()
		if chunk.Response != nil {
			resp = chunk.Response.Usage.counts()
		}
	}
	switch {
	case top.present:
		return openAIAmounts(&top, u)
	case resp.present:
		return openAIAmounts(&resp, u)
	}
	return false
}

// scanOpenAIChunk reads a streamed chunk's usage and its response's usage
// as encoding/json would, or reports false.
func scanOpenAIChunk(data []byte, top, resp *counts) bool {
	var v [2][]byte
	var r [1][]byte
	switch {
	case !members(data, openAIChunkNames, v[:]) || !scanCounts(v[0], openAIUsageNames, top):
		return false
	case jsonNull(v[1]):
		return true
	}
	return jsonObject(v[1]) && members(v[1], usageName, r[:]) && scanCounts(r[0], openAIUsageNames, resp)
}

// Limits implements API.
func (OpenAI) Limits(h http.Header, now time.Time) []Remaining {
	return remainingHeaders(h, openAIRateHeaders, func(v string) (time.Time, bool) {
		d, err := time.ParseDuration(v)
		return now.Add(d), err == nil
	})
}

var openAIRateHeaders = rateHeaders(
	rateHeader{concurry.CallKey, "x-ratelimit-remaining-requests", "x-ratelimit-reset-requests"},
	rateHeader{KeyTokens, "x-ratelimit-remaining-tokens", "x-ratelimit-reset-tokens"},
)

// rateHeader names the headers that state one key's remaining units and
// when it resets.
type rateHeader struct{ key, remaining, reset string }

// rateHeaders returns hs with the header names in canonical form, so that
// they index an http.Header as they are.
func rateHeaders(hs ...rateHeader) []rateHeader {
	for i := range hs {
		hs[i].remaining = textproto.CanonicalMIMEHeaderKey(hs[i].remaining)
		hs[i].reset = textproto.CanonicalMIMEHeaderKey(hs[i].reset)
	}
	return hs
}

// remainingHeaders reads the facts of the headers present in h; headers
// are from rateHeaders, and parseReset reads a reset header's value.
func remainingHeaders(h http.Header, headers []rateHeader, parseReset func(string) (time.Time, bool)) []Remaining {
	return appendRemaining(nil, h, headers, parseReset)
}

// appendRemaining appends to out the facts of the headers present in h;
// a nil parseReset leaves every Reset zero.
func appendRemaining(out []Remaining, h http.Header, headers []rateHeader, parseReset func(string) (time.Time, bool)) []Remaining {
	for _, rh := range headers {
		n, err := strconv.ParseInt(first(h[rh.remaining]), 10, 64)
		if err != nil {
			continue // absent or malformed
		}
		if out == nil {
			out = make([]Remaining, 0, len(headers))
		}
		r := Remaining{Key: rh.key, Remaining: n}
		if parseReset != nil {
			if at, ok := parseReset(first(h[rh.reset])); ok {
				r.Reset = at
			}
		}
		out = append(out, r)
	}
	return out
}

// first returns vs[0], or "".
func first(vs []string) string {
	if len(vs) == 0 {
		return ""
	}
	return vs[0]
}
