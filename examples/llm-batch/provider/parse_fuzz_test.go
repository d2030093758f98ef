package provider

import (
	"testing"
)

// FuzzParse feeds every API's request decoder arbitrary bodies: none
// panics, and a body it accepts asks for 1 to MaxOutputTokens tokens.
func FuzzParse(f *testing.F) {
	for _, seed := range []string{
		`{"model":"m","messages":[{"role":"user","content":"hello"}],"max_completion_tokens":5,"stream":true,"stream_options":{"include_usage":true}}`,
		`{"model":"m","messages":[{"role":"system","content":[{"type":"text","text":"be brief"}]},{"role":"user","content":"x"}],"max_tokens":5}`,
		`{"model":"m","input":[{"type":"message","role":"user","content":[{"type":"input_text","text":"hi"}]}],"instructions":"i","max_output_tokens":9}`,
		`{"model":"m","input":"hi"}`,
		`{"model":"m","max_tokens":3,"system":[{"type":"text","text":"s"}],"messages":[{"role":"user","content":[{"type":"text","text":"t"}]}]}`,
		`{"prompt":"p","max_tokens":2}`,
		`{"model":"m","messages":[null,1,true,{"content":{"text":["a",{"text":"b"}]}}],"max_tokens":-1}`,
	} {
		f.Add([]byte(seed))
	}
	o, err := Options{Regions: []string{"r"}, Accounts: []string{"a"}, Quota: sdkQuota, MaxOutputTokens: 100}.withDefaults()
	if err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, body []byte) {
		for _, rt := range routes {
			req, err := rt.api.parse(body, o)
			if err != nil {
				continue
			}
			if req.maxOut < 1 || req.maxOut > o.MaxOutputTokens {
				t.Fatalf("%s accepted max %d of %s", rt.suffix, req.maxOut, body)
			}
			if n := req.prompt.count(CountTokens); n < 0 {
				t.Fatalf("%s counted %d tokens", rt.suffix, n)
			}
		}
	})
}
