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
	maxTokens, err := anthropicMaxTokens(body)
	if err != nil {
		return nil, err
	}
	count := a.CountTokens
	if count == nil {
		count = EstimateTokens
	}
	in, out := max(1, count(body)), max(1, maxTokens)
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

// anthropicMaxTokens returns a request body's max_tokens, 0 when it has
// none.
func anthropicMaxTokens(body []byte) (int64, error) {
	if len(body) == 0 {
		return 0, nil
	}
	var v [1][]byte
	if members(body, maxTokensName, v[:]) {
		if n, _, ok := jsonInt(v[0]); ok {
			return n, nil
		}
	}
	var req struct {
		MaxTokens int64 `json:"max_tokens"`
	}
	if err := json.Unmarshal(body, &req); err != nil {
		return 0, err
	}
	return req.MaxTokens, nil
}

// maxTokensName is the member of a request that caps its output.
var maxTokensName = []string{"max_tokens"}

type anthropicUsage struct {
	InputTokens   *int64 `json:"input_tokens"`
	CacheCreation int64  `json:"cache_creation_input_tokens"`
	OutputTokens  *int64 `json:"output_tokens"`
}

// anthropicUsageNames are the members of an anthropicUsage, in its field
// order.
var anthropicUsageNames = []string{"input_tokens", "cache_creation_input_tokens", "output_tokens"}

// counts returns what encoding/json read into u.
func (u *anthropicUsage) counts() counts {
	var c counts
	if u != nil {
		c.present = true
		c.n[1], c.set[1] = u.CacheCreation, true
		for i, p := range []*int64{0: u.InputTokens, 2: u.OutputTokens} {
			if p != nil {
				c.n[i], c.set[i] = *p, true
			}
		}
	}
	return c
}

// anthropicAmounts records what c, an anthropicUsage, says into into;
// found reports whether it said anything.
func anthropicAmounts(c *counts, into concurry.Amounts) bool {
	if !c.present {
		return false
	}
	found := false
	if c.set[0] {
		into[KeyInputTokens] = c.n[0] + c.n[1]
		found = true
	}
	if c.set[2] {
		into[KeyOutputTokens] = c.n[2] // cumulative in a stream
		found = true
	}
	if found {
		into[KeyTokens] = into[KeyInputTokens] + into[KeyOutputTokens]
	}
	return found
}

// Usage implements API.
func (Anthropic) Usage(body []byte) (concurry.Amounts, bool) {
	return bodyUsage[*anthropicUsage](body, anthropicUsageNames, anthropicAmounts)
}

// anthropicEventNames are the members of a streamed event that say its
// type and may hold usage.
var anthropicEventNames = []string{"type", "usage", "message"}

// StreamUsage implements API.
func (Anthropic) StreamUsage(event string, data []byte, u concurry.Amounts) bool {
	var typ []byte
	var top, msg counts
	if !scanAnthropicEvent(data, &typ, &top, &msg) {
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
		typ, top = []byte(e.Type), e.Usage.counts()
		if e.Message != nil {
			msg = e.Message.Usage.counts()
		}
	}
	switch string(typ) {
	case "message_start":
		// Only the input is final at the start: output_tokens counts what
		// was generated so far. The output, and the total, stay unreported
		// (charged as acquired) until a message_delta states them.
		if !anthropicAmounts(&msg, u) {
			return false
		}
		delete(u, KeyOutputTokens)
		delete(u, KeyTokens)
		return len(u) > 0
	case "message_delta":
		return anthropicAmounts(&top, u)
	}
	return false
}

// scanAnthropicEvent reads a streamed event's type, usage and message's
// usage as encoding/json would, or reports false.
func scanAnthropicEvent(data []byte, typ *[]byte, top, msg *counts) bool {
	var v [3][]byte
	var r [1][]byte
	var ok bool
	switch {
	case !members(data, anthropicEventNames, v[:]) || !scanCounts(v[1], anthropicUsageNames, top):
		return false
	case jsonNull(v[2]):
		*msg = counts{}
	case !jsonObject(v[2]) || !members(v[2], usageName, r[:]) || !scanCounts(r[0], anthropicUsageNames, msg):
		return false
	}
	*typ, ok = jsonString(v[0])
	return ok
}

// Limits implements API.
func (Anthropic) Limits(h http.Header, _ time.Time) []Remaining {
	return remainingHeaders(h, anthropicRateHeaders, func(v string) (time.Time, bool) {
		at, err := time.Parse(time.RFC3339, v)
		return at, err == nil
	})
}

var anthropicRateHeaders = rateHeaders(
	rateHeader{concurry.CallKey, "anthropic-ratelimit-requests-remaining", "anthropic-ratelimit-requests-reset"},
	rateHeader{KeyTokens, "anthropic-ratelimit-tokens-remaining", "anthropic-ratelimit-tokens-reset"},
	rateHeader{KeyInputTokens, "anthropic-ratelimit-input-tokens-remaining", "anthropic-ratelimit-input-tokens-reset"},
	rateHeader{KeyOutputTokens, "anthropic-ratelimit-output-tokens-remaining", "anthropic-ratelimit-output-tokens-reset"},
)
