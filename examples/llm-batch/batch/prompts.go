package batch

import (
	"fmt"
	"math/rand/v2"
	"strings"
)

// Prompt is one item of the batch.
type Prompt struct {
	ID          int
	Text        string
	InputTokens int64 // CountTokens(Text): what the provider will count
	MaxTokens   int64
}

var vocabulary = strings.Fields(`the a of to and in that for is on with as by at from this
model region account quota token request minute limit batch prompt answer summary
document report customer invoice contract review translate classify extract explain`)

// makePrompts returns n prompts whose input sizes are drawn uniformly from
// [minTokens, maxTokens], the same for the same seed.
func makePrompts(n int, minTokens, maxTokens, maxOut int64, seed uint64) []Prompt {
	rng := rand.New(rand.NewPCG(seed, 0x70))
	prompts := make([]Prompt, n)
	var sb strings.Builder
	for i := range prompts {
		sb.Reset()
		words := minTokens + rng.Int64N(maxTokens-minTokens+1)
		fmt.Fprintf(&sb, "task-%d:", i)
		for range words - 1 {
			sb.WriteByte(' ')
			sb.WriteString(vocabulary[rng.IntN(len(vocabulary))])
		}
		text := sb.String()
		prompts[i] = Prompt{ID: i, Text: text, InputTokens: CountTokens(text), MaxTokens: maxOut}
	}
	return prompts
}
