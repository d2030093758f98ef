package batch

import (
	"net/http"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// The provider's tokens headers name, by their limit, which of its two
// token quotas they report: the fact goes to that quota's key.
func TestProviderAPIStatesTokensUnderTheirQuota(t *testing.T) {
	api := providerAPI{quota: Quota{RequestsPerMinute: 25, InputTokensPerMinute: 20_000, OutputTokensPerMinute: 5_000}}
	h := http.Header{}
	h.Set("X-Ratelimit-Remaining-Requests", "7")
	h.Set("X-Ratelimit-Remaining-Tokens", "300")
	h.Set("X-Ratelimit-Limit-Tokens", "5000")
	keys := func() map[string]int64 {
		m := map[string]int64{}
		for _, r := range api.Limits(h, time.Now()) {
			m[r.Key] = r.Remaining
		}
		return m
	}
	assert.Equal(t, map[string]int64{concurry.CallKey: 7, KeyOutputTokens: 300}, keys())
	h.Set("X-Ratelimit-Limit-Tokens", "20000")
	assert.Equal(t, map[string]int64{concurry.CallKey: 7, KeyInputTokens: 300}, keys())
	h.Set("X-Ratelimit-Limit-Tokens", "123")
	assert.Equal(t, map[string]int64{concurry.CallKey: 7}, keys(), "a quota it does not know: no fact")
	api.quota.InputTokensPerMinute = 5_000
	h.Set("X-Ratelimit-Limit-Tokens", "5000")
	assert.Equal(t, map[string]int64{concurry.CallKey: 7, KeyInputTokens: 300, KeyOutputTokens: 300}, keys(),
		"equal quotas: both, the headers reporting the one with less left")
}

func TestCountPromptTokens(t *testing.T) {
	assert.Equal(t, int64(5), countPromptTokens([]byte(`{"model":"m","messages":[{"role":"system","content":"be brief"},{"role":"user","content":"say something nice"}]}`)))
	assert.Equal(t, int64(3), countPromptTokens([]byte(`{"messages":[{"role":"user","content":[{"type":"text","text":"one two"},{"type":"text","text":"three"}]}]}`)))
	body := []byte(`{"messages":"not a list"}`)
	assert.Equal(t, httplimit.EstimateTokens(body), countPromptTokens(body), "a body it cannot read is estimated")
}
