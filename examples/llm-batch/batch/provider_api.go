package batch

import (
	"encoding/json"
	"net/http"
	"strconv"
	"time"

	"github.com/concurry/concurry/examples/llm-batch/provider"
	"github.com/concurry/concurry/httplimit"
)

// providerAPI is httplimit.OpenAI for the simulated provider's quotas,
// which count input and output tokens apart (Bedrock's way) where OpenAI
// counts them together. The provider's x-ratelimit-*-tokens headers report
// whichever of its two token quotas has the smaller share left, and
// x-ratelimit-limit-tokens says which: providerAPI states the fact under
// that quota's key (KeyInputTokens or KeyOutputTokens), where the client's
// LimitSets have their limits, instead of under httplimit.KeyTokens, which
// they lack. When both quotas are equal the headers cannot say which;
// the fact then lowers both, which is safe: it reports the one with less
// left. Safe for concurrent use.
type providerAPI struct {
	httplimit.OpenAI
	quota Quota
}

// Limits implements httplimit.API.
func (a providerAPI) Limits(h http.Header, now time.Time) []httplimit.Remaining {
	facts := a.OpenAI.Limits(h, now)
	limit, err := strconv.ParseInt(h.Get("X-Ratelimit-Limit-Tokens"), 10, 64)
	out := make([]httplimit.Remaining, 0, len(facts)+1)
	for _, f := range facts {
		if f.Key != httplimit.KeyTokens {
			out = append(out, f)
			continue
		}
		if err != nil {
			continue
		}
		for _, q := range []struct {
			key       string
			perMinute int64
		}{{KeyInputTokens, a.quota.InputTokensPerMinute}, {KeyOutputTokens, a.quota.OutputTokensPerMinute}} {
			if q.perMinute == limit {
				f.Key = q.key
				out = append(out, f)
			}
		}
	}
	return out
}

// countPromptTokens counts the input tokens of a chat completion request's
// body exactly, with the provider's tokenizer over the text of its
// messages (string contents, or content parts with text). A body it cannot
// read is estimated by httplimit.EstimateTokens, an over-estimate that
// Update refunds.
func countPromptTokens(body []byte) int64 {
	var req struct {
		Messages []struct {
			Content json.RawMessage `json:"content"`
		} `json:"messages"`
	}
	if json.Unmarshal(body, &req) != nil || len(req.Messages) == 0 {
		return httplimit.EstimateTokens(body)
	}
	var n int64
	for _, m := range req.Messages {
		var text string
		if json.Unmarshal(m.Content, &text) == nil {
			n += provider.CountTokens(text)
			continue
		}
		var parts []struct {
			Text string `json:"text"`
		}
		if json.Unmarshal(m.Content, &parts) != nil {
			return httplimit.EstimateTokens(body)
		}
		for _, p := range parts {
			n += provider.CountTokens(p.Text)
		}
	}
	return n
}
