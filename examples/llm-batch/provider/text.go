package provider

import (
	"bytes"
	"encoding/json"
	"hash/fnv"
	"math/rand/v2"
	"strings"
	"time"
)

// CountTokens is the provider's default tokenizer: one token per
// whitespace-separated word. A client that splits its prompts the same way
// knows their input exactly; the usual client-side estimate, a token per
// four bytes rounded up, is above it for words of three letters or more.
func CountTokens(s string) int64 { return int64(len(strings.Fields(s))) }

// texts is the text of a prompt field, whatever its JSON shape: a string; an
// array of strings, messages or content parts; an object whose "text" and
// "content" fields hold text (a message, a content part such as
// {"type":"text","text":…} or {"type":"input_text","text":…}). Every other
// field and type is ignored, null included.
type texts []string

// UnmarshalJSON collects the text of b.
func (t *texts) UnmarshalJSON(b []byte) error {
	b = bytes.TrimSpace(b)
	switch {
	case len(b) == 0:
		return nil
	case b[0] == '"':
		var s string
		if err := json.Unmarshal(b, &s); err != nil {
			return err
		}
		*t = append(*t, s)
	case b[0] == '[':
		var items []texts
		if err := json.Unmarshal(b, &items); err != nil {
			return err
		}
		for _, it := range items {
			*t = append(*t, it...)
		}
	case b[0] == '{':
		var obj struct {
			Text    texts `json:"text"`
			Content texts `json:"content"`
		}
		if err := json.Unmarshal(b, &obj); err != nil {
			return err
		}
		*t = append(append(*t, obj.Text...), obj.Content...)
	}
	return nil
}

// count returns the tokens of every text by count, saturating.
func (t texts) count(count func(string) int64) int64 {
	var n int64
	for _, s := range t {
		n = addSaturating(n, max(0, count(s)))
	}
	return n
}

// vocabulary is the words of the provider's answers.
var vocabulary = strings.Fields(`the a of to and in that for is on with as by at from this
answer summary model result token request region account quota minute batch
review document report invoice contract translate classify extract explain`)

// generation is what the provider makes of one call: its output (one word
// per token) and how long it takes.
type generation struct {
	words   []string
	latency time.Duration
}

// generate draws the output of a call whose request body is body and which
// may produce up to maxOut tokens: a length uniform in [1, maxOut], words
// from the vocabulary, and a latency uniform in [MinLatency, MaxLatency].
// The same seed and body give the same generation.
func (o Options) generate(body []byte, maxOut int64) generation {
	h := fnv.New64a()
	_, _ = h.Write(body)
	rng := rand.New(rand.NewPCG(o.Seed, h.Sum64()))
	g := generation{words: make([]string, 1+rng.Int64N(maxOut))}
	for i := range g.words {
		g.words[i] = vocabulary[rng.IntN(len(vocabulary))]
	}
	g.latency = o.MinLatency + time.Duration(rng.Int64N(int64(o.MaxLatency-o.MinLatency)+1))
	return g
}

// out returns the number of output tokens.
func (g generation) out() int64 { return int64(len(g.words)) }

// text returns the whole output.
func (g generation) text() string { return strings.Join(g.words, " ") }

// chunkWords is the number of words of a streamed delta.
const chunkWords = 8

// chunks returns the output as stream deltas of up to chunkWords words,
// which concatenate to text().
func (g generation) chunks() []string {
	var out []string
	for i := 0; i < len(g.words); i += chunkWords {
		s := strings.Join(g.words[i:min(i+chunkWords, len(g.words))], " ")
		if i > 0 {
			s = " " + s
		}
		out = append(out, s)
	}
	return out
}
