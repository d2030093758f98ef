package batch

import (
	"fmt"
	"io"
	"strings"

	"github.com/concurry/concurry"
)

// WriteHeader says what a run of c is about to do: the provider's quotas
// and, unless c.Naive, the client's limits and where they come from.
func (c Config) WriteHeader(w io.Writer) error {
	c, err := c.WithDefaults()
	if err != nil {
		return err
	}
	q := c.Quota
	var b strings.Builder
	fmt.Fprintf(&b, "llm-batch: %s prompts to a simulated LLM provider on 127.0.0.1: %d regions × %d accounts.\n",
		group(int64(c.Prompts)), len(c.Regions), len(c.Accounts))
	fmt.Fprintf(&b, "Each (region, account) allows per minute — a minute lasts %v — %s requests, %s input tokens\n"+
		"and %s output tokens, and %d connections at once; it answers 429 to a call that would exceed one.\n",
		c.Minute, group(q.RequestsPerMinute), group(q.InputTokensPerMinute), group(q.OutputTokensPerMinute), q.Concurrency)
	if c.ForeignShare > 0 {
		fmt.Fprintf(&b, "A foreign client, unseen by the limiter, spends %.0f%% of each (region, account)'s quotas.\n", 100*c.ForeignShare)
	}
	if c.Naive {
		fmt.Fprintf(&b, "Naive: no limiter. %d workers call the endpoints in turn with the OpenAI SDK and retry each 429 after its Retry-After.\n", c.Workers)
		_, err := io.WriteString(w, b.String())
		return err
	}
	limits, err := c.ClientLimits()
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "concurry: %d workers call with the OpenAI SDK (openai-go) through an httplimit.Transport that\n"+
		"acquires each call from a LimitPool (%v) over one LimitSet per (region, account), then sends\n"+
		"it to the one that granted it. Each set holds:\n",
		c.Workers, c.Balancing)
	for _, l := range limits {
		fmt.Fprintf(&b, "  %v\n", l)
	}
	fmt.Fprintf(&b, "  = each quota less %.0f%% (its rate × %v, the longest a call may take from grant to provider), at the same rate.\n",
		100*c.Margin(), c.Delay)
	if c.Algorithm == concurry.FixedWindow {
		b.WriteString("Note: FixedWindow lets up to 2× its capacity through across a window boundary, so each limit holds\n" +
			"half of that over half the window: the same rate, and never more than the quota.\n")
	}
	if !c.Algorithm.Refunds() {
		fmt.Fprintf(&b, "Note: %v does not refund, so every call spends its whole max_tokens of output quota.\n", c.Algorithm)
	}
	fmt.Fprintf(&b, "Each call asks for its input tokens (counted exactly) and max_tokens (%d) of output; the transport\n"+
		"settles the usage the answer reports", c.MaxTokens)
	if c.NoFeedback {
		b.WriteString(", and (-feedback=false) ignores the provider's rate-limit headers and 429s.\n")
	} else {
		fmt.Fprintf(&b, ", lowers a set to what the provider's rate-limit headers say is left\n"+
			"(less %.0f%% of the quota), and pauses a set on a 429 and sends the call to another.\n", 100*c.Margin())
	}
	_, err = io.WriteString(w, b.String())
	return err
}
