package httplimit

import (
	"encoding/json"
	"fmt"
	"maps"
	"net/http"
	"strings"
	"testing"

	"github.com/concurry/concurry"
)

// The presets read JSON with members, and fall back to encoding/json when
// it declines. These references decode with encoding/json alone, as the
// presets did before the scan: every text must read the same through both.

func refOpenAICost(body []byte) (concurry.Amounts, error) {
	var req openAIRequest
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
	}
	out := int64(4096)
	for _, p := range []*int64{req.MaxTokens, req.MaxCompletionTokens, req.MaxOutputTokens} {
		if p != nil && *p > 0 {
			out = *p
			break
		}
	}
	in := max(1, EstimateTokens(body))
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

func refAnthropicCost(body []byte) (concurry.Amounts, error) {
	var req struct {
		MaxTokens int64 `json:"max_tokens"`
	}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return nil, err
		}
	}
	in, out := max(1, EstimateTokens(body)), max(1, req.MaxTokens)
	return concurry.Amounts{KeyTokens: in + out, KeyInputTokens: in, KeyOutputTokens: out}, nil
}

func refOpenAIAmounts(u *openAIUsage, into concurry.Amounts) bool {
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

func refAnthropicAmounts(u *anthropicUsage, into concurry.Amounts) bool {
	found := false
	if u.InputTokens != nil {
		into[KeyInputTokens] = *u.InputTokens + u.CacheCreation
		found = true
	}
	if u.OutputTokens != nil {
		into[KeyOutputTokens] = *u.OutputTokens
		found = true
	}
	if found {
		into[KeyTokens] = into[KeyInputTokens] + into[KeyOutputTokens]
	}
	return found
}

func refUsage[U any](body []byte, add func(*U, concurry.Amounts) bool) (concurry.Amounts, bool) {
	var r struct {
		Usage *U `json:"usage"`
	}
	if json.Unmarshal(body, &r) != nil || r.Usage == nil {
		return nil, false
	}
	u := concurry.Amounts{}
	return u, add(r.Usage, u)
}

func refOpenAIStream(data []byte, u concurry.Amounts) bool {
	if len(data) == 0 || data[0] != '{' {
		return false
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
		return refOpenAIAmounts(chunk.Usage, u)
	case chunk.Response != nil && chunk.Response.Usage != nil:
		return refOpenAIAmounts(chunk.Response.Usage, u)
	}
	return false
}

func refAnthropicStream(data []byte, u concurry.Amounts) bool {
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
		if !refAnthropicAmounts(e.Message.Usage, u) {
			return false
		}
		delete(u, KeyOutputTokens)
		delete(u, KeyTokens)
		return len(u) > 0
	case e.Type == "message_delta" && e.Usage != nil:
		return refAnthropicAmounts(e.Usage, u)
	}
	return false
}

// jsonSeeds are texts of every shape the presets meet, and the edges the
// scan must decline or read exactly.
var jsonSeeds = []string{
	`{"model":"m","max_tokens":100,"messages":[{"role":"user","content":"max_tokens: 7"}]}`,
	`{"model":"m","max_completion_tokens":300,"max_tokens":null,"stream":true,"stream_options":{"include_usage":true}}`,
	`{"model":"m","input":"hi","max_output_tokens":64}`,
	`{"MAX_TOKENS":5,"Max_Completion_Tokens":9}`,
	`{"max_tokens":5,"max_tokens":6}`,
	`{"max_tokens":5,"MAX_TOKENS":null}`,
	`{"max\u005ftokens":5}`,
	`{"max_toKens":5}`,
	`{"max_tokens":1.5}`,
	`{"max_tokens":1e3}`,
	`{"max_tokens":-3,"max_completion_tokens":0,"max_output_tokens":12}`,
	`{"max_tokens":9223372036854775807}`,
	`{"max_tokens":9223372036854775808}`,
	`{"max_tokens":-9223372036854775808}`,
	`{"max_tokens":"100"}`,
	`{"max_tokens":100} x`,
	`{"max_tokens":100,}`,
	`{"a":[1,2,{"b":[true,false,null]}],"max_tokens":-0}`,
	` {"a":"\ud83d\ude00 \" \\ \/ \b\f\n\r\t","max_tokens":1} `,
	`{"a":"é","max_tokens":2}`,
	`null`, `[]`, `"s"`, `7`, `{}`, ``, `{`, `{"a"}`, `{"a":01}`, `{"a":-}`, `{"a":1.}`, `{"a":1e}`, `{"a":"` + "\x01" + `"}`,
	strings.Repeat(`{"a":`, 70) + `1` + strings.Repeat(`}`, 70),
	`{"id":"c","object":"chat.completion","choices":[{"index":0,"message":{"role":"assistant","content":"hi"}}],` +
		`"usage":{"prompt_tokens":7,"completion_tokens":3,"total_tokens":10,"prompt_tokens_details":{"cached_tokens":0}}}`,
	`{"usage":{"input_tokens":11,"output_tokens":4,"cache_creation_input_tokens":2,"cache_read_input_tokens":0,"service_tier":"standard"}}`,
	`{"usage":{"prompt_tokens":7},"usage":{"completion_tokens":3}}`,
	`{"usage":{"prompt_tokens":7,"completion_tokens":null,"output_tokens":1,"input_tokens":2}}`,
	`{"usage":{"PROMPT_TOKENS":7,"Completion_tokens":3}}`,
	`{"usage":{"prompt_tokens":7,"completion_tokens":"3"}}`,
	`{"usage":null}`, `{"usage":[]}`, `{"usage":5}`,
	`{"usage":{"input_tokens":1,"cache_creation_input_tokens":null,"output_tokens":2}}`,
	`{"id":"x","choices":[{"delta":{"content":"hi"}}],"usage":null}`,
	`{"id":"x","choices":[],"usage":{"prompt_tokens":20,"completion_tokens":5}}`,
	`{"type":"response.completed","response":{"id":"r","usage":{"input_tokens":9,"output_tokens":2}}}`,
	`{"type":"response.output_text.delta","delta":"x"}`,
	`{"usage":null,"response":5}`,
	`{"usage":{"prompt_tokens":1,"completion_tokens":2},"response":{"usage":"x"}}`,
	`{"type":"message_start","message":{"id":"m","usage":{"input_tokens":25,"output_tokens":1}}}`,
	`{"type":"message_delta","delta":{"stop_reason":"end_turn"},"usage":{"output_tokens":15}}`,
	`{"type":"content_block_delta","index":0,"delta":{"type":"text_delta","text":"Hello"}}`,
	`{"type":"message_\u0073tart","message":{"usage":{"input_tokens":3}}}`,
	`{"type":7,"usage":{"output_tokens":1}}`,
	`{"type":null,"usage":{"output_tokens":1}}`,
	`[DONE]`,
}

// equalAmounts compares two results, nil and empty alike.
func equalAmounts(a, b concurry.Amounts) bool { return len(a) == len(b) && maps.Equal(a, b) }

// checkPresets fails t where a preset reads data otherwise than its
// encoding/json reference.
func checkPresets(t *testing.T, data []byte) {
	t.Helper()
	r, _ := http.NewRequest(http.MethodPost, "http://llm.invalid/v1", nil)
	report := func(what string, got, want any) {
		t.Helper()
		if fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s of %q: got %v, want %v", what, data, got, want)
		}
	}
	oc, oerr := OpenAI{}.Cost(r, data)
	rc, rerr := refOpenAICost(data)
	report("OpenAI.Cost", []any{oc, oerr != nil}, []any{rc, rerr != nil})
	ac, aerr := Anthropic{}.Cost(r, data)
	rc, rerr = refAnthropicCost(data)
	report("Anthropic.Cost", []any{ac, aerr != nil}, []any{rc, rerr != nil})

	ou, ofound := OpenAI{}.Usage(data)
	ru, rfound := refUsage(data, refOpenAIAmounts)
	if ofound != rfound || !equalAmounts(ou, ru) || (ou == nil) != (ru == nil) {
		t.Errorf("OpenAI.Usage of %q: got %v %v, want %v %v", data, ou, ofound, ru, rfound)
	}
	au, afound := Anthropic{}.Usage(data)
	ru, rfound = refUsage(data, refAnthropicAmounts)
	if afound != rfound || !equalAmounts(au, ru) || (au == nil) != (ru == nil) {
		t.Errorf("Anthropic.Usage of %q: got %v %v, want %v %v", data, au, afound, ru, rfound)
	}

	// A stream's usage so far is added to: start both from the same.
	start := concurry.Amounts{KeyOutputTokens: 1}
	got, want := maps.Clone(start), maps.Clone(start)
	gf, wf := OpenAI{}.StreamUsage("", data, got), refOpenAIStream(data, want)
	if gf != wf || !maps.Equal(got, want) {
		t.Errorf("OpenAI.StreamUsage of %q: got %v %v, want %v %v", data, got, gf, want, wf)
	}
	got, want = maps.Clone(start), maps.Clone(start)
	gf, wf = Anthropic{}.StreamUsage("", data, got), refAnthropicStream(data, want)
	if gf != wf || !maps.Equal(got, want) {
		t.Errorf("Anthropic.StreamUsage of %q: got %v %v, want %v %v", data, got, gf, want, wf)
	}
}

func TestPresetsReadJSONAsEncodingJSON(t *testing.T) {
	for _, s := range jsonSeeds {
		checkPresets(t, []byte(s))
	}
}

// TestMembersFastPath checks that the common texts are read by the scan,
// not by the fallback: a regression there costs every request.
func TestMembersFastPath(t *testing.T) {
	var v [3][]byte
	for _, s := range jsonSeeds[:3] {
		if !members([]byte(s), openAIMaxTokenNames, v[:]) {
			t.Errorf("members declined %s", s)
		}
	}
	var c counts
	for _, s := range []string{
		`{"id":"c","choices":[],"usage":{"prompt_tokens":7,"completion_tokens":3,"prompt_tokens_details":{"cached_tokens":0}}}`,
		`{"usage":{"input_tokens":11,"output_tokens":4,"service_tier":"standard"}}`,
	} {
		if !members([]byte(s), usageName, v[:1]) || !scanCounts(v[0], openAIUsageNames, &c) || !c.present {
			t.Errorf("members declined the usage of %s", s)
		}
	}
	for _, s := range []string{`{"max_tokens":5,"max_tokens":6}`, `{"max\u005ftokens":5}`, `{"a":1} x`, `null`} {
		if members([]byte(s), openAIMaxTokenNames, v[:]) {
			t.Errorf("members read %s, which it must decline", s)
		}
	}
	body := []byte(jsonSeeds[0])
	if n := testing.AllocsPerRun(100, func() { _, _ = openAIMaxTokens(body) }); n != 0 {
		t.Errorf("openAIMaxTokens allocates %v times, want 0", n)
	}
}

func FuzzJSONMembers(f *testing.F) {
	for _, s := range jsonSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(checkPresets)
}
