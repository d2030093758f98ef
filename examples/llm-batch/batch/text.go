package batch

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/concurry/concurry"
)

// WriteText writes the summary as a table, one row per (region, account),
// then the totals, the wall time and the throughput with its formula.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	fmt.Fprintf(&b, "%-11s %-13s %8s %11s %11s %5s │ %s\n", "region", "account", "requests", "input tok", "output tok", "429s",
		"quota used:  req    in   out  conns")
	for _, e := range s.Endpoints {
		conns := fmt.Sprintf("%d/%d", e.MaxConnections, s.Quota.Concurrency)
		fmt.Fprintf(&b, "%-11s %-13s %s %6s\n", e.Region, e.Account, s.row(e), conns)
	}
	fmt.Fprintf(&b, "%-11s %-13s %s\n\n", "total", "", s.row(s.Total))

	fmt.Fprintf(&b, "%s prompts answered of %s in %.1fs: %.0f requests/s, %s × 429, %d transport errors",
		group(int64(s.Completed)), group(int64(s.Prompts)), s.WallSeconds, s.RequestsPerSec, group(s.RateLimited), s.TransportErrors)
	if s.Attempts > int64(s.Completed) {
		fmt.Fprintf(&b, ", %s calls sent", group(s.Attempts))
	}
	fmt.Fprintf(&b, ".\nThe provider served %s calls and sent %s × 429 by its own accounting.\n",
		group(s.Total.Requests), group(s.Total.ProviderRejected))
	if s.MaxRequests > 0 {
		s.writeThroughput(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// row formats an endpoint's counts and quota shares.
func (s Summary) row(e EndpointSummary) string {
	u := e.Utilization
	return fmt.Sprintf("%8s %11s %11s %5s │ %16s %5s %5s", group(e.Requests), group(e.InputTokens), group(e.OutputTokens),
		group(e.RateLimited), pct(u.Requests), pct(u.InputTokens), pct(u.OutputTokens))
}

func (s Summary) writeThroughput(b *strings.Builder) {
	n := float64(s.Total.Requests)
	minutes := 1 + s.WallSeconds/s.MinuteSeconds
	q := s.Quota
	fmt.Fprintf(b, "Throughput: %s of the most the quotas allowed in %.1fs (%s requests; %s bound it).\n",
		pct(s.Throughput), s.WallSeconds, group(int64(s.MaxRequests+0.5)), strings.ReplaceAll(s.Binding, "_", " "))
	fmt.Fprintf(b, "  max = Σ endpoints  min over quotas  (capacity + rate·T) / average cost of a request\n")
	fmt.Fprintf(b, "      = %d × min(%s / 1, %s / %.1f, %s / %.1f) × (1 + T/minute) = %d × %.2f × %.2f\n",
		len(s.Endpoints), group(q.RequestsPerMinute), group(q.InputTokensPerMinute), float64(s.Total.InputTokens)/n,
		group(q.OutputTokensPerMinute), float64(s.Total.OutputTokens)/n,
		len(s.Endpoints), s.MaxRequests/float64(len(s.Endpoints))/minutes, minutes)
}

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
	if c.Naive {
		fmt.Fprintf(&b, "Naive: no limiter. %d workers call the endpoints in turn and retry each 429 after its Retry-After.\n", c.Workers)
		_, err := io.WriteString(w, b.String())
		return err
	}
	limits, err := c.ClientLimits()
	if err != nil {
		return err
	}
	fmt.Fprintf(&b, "concurry: %d workers acquire from a LimitPool (%v) over one LimitSet per (region, account):\n", c.Workers, c.Balancing)
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
	fmt.Fprintf(&b, "Each call asks for its input tokens (counted exactly) and max_tokens (%d) of output, then Updates with its real usage.\n", c.MaxTokens)
	_, err = io.WriteString(w, b.String())
	return err
}

// pct formats a share as a whole percentage.
func pct(f float64) string { return strconv.FormatFloat(100*f, 'f', 0, 64) + "%" }

// group formats n with thousands separators: 12,345.
func group(n int64) string {
	s := strconv.FormatInt(n, 10)
	neg := strings.HasPrefix(s, "-")
	s = strings.TrimPrefix(s, "-")
	var b strings.Builder
	for i, c := range s {
		if i > 0 && (len(s)-i)%3 == 0 {
			b.WriteByte(',')
		}
		b.WriteRune(c)
	}
	if neg {
		return "-" + b.String()
	}
	return b.String()
}
