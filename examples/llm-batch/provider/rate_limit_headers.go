package provider

import (
	"net/http"
	"strconv"
	"time"
)

// writeOpenAILimits writes OpenAI's rate-limit headers of s:
// x-ratelimit-{limit,remaining,reset}-{requests,tokens}. Limits are per
// minute, remaining counts are whole units left, and a reset is the time
// until the quota is full again as a Go duration rounded up to a
// millisecond ("6m0s", "1s", "20ms", "0s" when full). The tokens are the
// TokensPerMinute quota when there is one, otherwise the more restrictive
// of the input and output quotas (the one with the smaller share left).
func writeOpenAILimits(h http.Header, s snapshot) {
	for _, l := range []struct {
		name  string
		state limitState
	}{{"requests", s.dims[dimRequests]}, {"tokens", s.openAITokens()}} {
		h.Set("X-Ratelimit-Limit-"+l.name, strconv.FormatInt(l.state.Limit, 10))
		h.Set("X-Ratelimit-Remaining-"+l.name, strconv.FormatInt(l.state.Remaining, 10))
		h.Set("X-Ratelimit-Reset-"+l.name, roundUpMilliseconds(l.state.Reset).String())
	}
}

// writeAnthropicLimits writes Anthropic's rate-limit headers of s:
// anthropic-ratelimit-{requests,tokens,input-tokens,output-tokens}-
// {limit,remaining,reset}. A reset is the instant the quota is full again,
// in RFC 3339 UTC, rounded up to a millisecond (whole seconds carry no
// fraction; the real API sends whole seconds, too coarse for a scaled
// minute). The tokens are the most restrictive of the token quotas: the
// one with the smallest share left.
func writeAnthropicLimits(h http.Header, s snapshot) {
	for _, l := range []struct {
		name  string
		state limitState
	}{{"requests", s.dims[dimRequests]}, {"tokens", s.anthropicTokens()}, {"input-tokens", s.dims[dimInput]}, {"output-tokens", s.dims[dimOutput]}} {
		h.Set("Anthropic-Ratelimit-"+l.name+"-Limit", strconv.FormatInt(l.state.Limit, 10))
		h.Set("Anthropic-Ratelimit-"+l.name+"-Remaining", strconv.FormatInt(l.state.Remaining, 10))
		h.Set("Anthropic-Ratelimit-"+l.name+"-Reset", formatReset(s.at.Add(l.state.Reset)))
	}
}

// formatReset formats t in RFC 3339 UTC, rounded up to a millisecond.
func formatReset(t time.Time) string {
	if r := t.Truncate(time.Millisecond); !r.Equal(t) {
		t = r.Add(time.Millisecond)
	}
	return t.UTC().Format("2006-01-02T15:04:05.999Z07:00")
}

// openAITokens returns the tokens quota of OpenAI's headers.
func (s snapshot) openAITokens() limitState {
	if s.hasTokens {
		return s.dims[dimTokens]
	}
	return tighter(s.dims[dimInput], s.dims[dimOutput])
}

// anthropicTokens returns the tokens quota of Anthropic's headers.
func (s snapshot) anthropicTokens() limitState {
	t := tighter(s.dims[dimInput], s.dims[dimOutput])
	if s.hasTokens {
		t = tighter(t, s.dims[dimTokens])
	}
	return t
}

// tighter returns the one of a and b with the smaller share left; a on a
// tie.
func tighter(a, b limitState) limitState {
	if b.share() < a.share() {
		return b
	}
	return a
}
