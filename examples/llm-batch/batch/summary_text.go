package batch

import (
	"fmt"
	"io"
	"strconv"
	"strings"

	"github.com/jedib0t/go-pretty/v6/table"
	"github.com/jedib0t/go-pretty/v6/text"
)

// WriteText writes the summary as a table, one row per (region, account),
// then the totals, the wall time and the throughput with its formula.
func (s Summary) WriteText(w io.Writer) error {
	var b strings.Builder
	b.WriteString(s.endpointTable())
	b.WriteString("\n\n")
	fmt.Fprintf(&b, "%s prompts answered of %s in %.1fs: %.0f requests/s, %s × 429, %d transport errors, %s SDK errors",
		group(int64(s.Completed)), group(int64(s.Prompts)), s.WallSeconds, s.RequestsPerSec, group(s.RateLimited),
		s.TransportErrors, group(s.SDKErrors))
	if s.Calls > int64(s.Completed) {
		fmt.Fprintf(&b, ", %s calls sent", group(s.Calls))
	}
	fmt.Fprintf(&b, ".\nThe provider served %s calls and sent %s × 429 by its own accounting",
		group(s.Total.Requests), group(s.Total.ProviderRejected))
	if f := s.Total.ForeignServed + s.Total.ForeignRejected; f > 0 {
		fmt.Fprintf(&b, "; a foreign client made %s calls on the same accounts (%s refused)", group(f), group(s.Total.ForeignRejected))
	}
	b.WriteString(".\n")
	if s.MaxRequests > 0 {
		s.writeThroughput(&b)
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// endpointTable returns the table of the endpoints, without a final
// newline: their counts by the provider's accounting and the 429s the client
// received, then the shares of the quotas used and the peak of connections
// over the cap, under a header "quota used", and the limit requests waited
// on longest with its share of the waits; the totals are its footer.
func (s Summary) endpointTable() string {
	t := table.NewWriter()
	style := table.StyleLight
	style.Options.DrawBorder = false
	style.Box.PaddingLeft, style.Box.PaddingRight = "", ""
	style.Box.MiddleVertical, style.Box.MiddleSeparator = "  ", "──" // columns apart by two spaces
	style.Format.Header, style.Format.Footer = text.FormatDefault, text.FormatDefault
	t.SetStyle(style)
	used := "quota used"
	t.AppendHeader(table.Row{"", "", "", "", "", "", used, used, used, used, ""}, table.RowConfig{AutoMerge: true})
	t.AppendHeader(table.Row{"region", "account", "requests", "input tok", "output tok", "429s", "req", "in", "out", "peak conns", "bottleneck"})
	for _, e := range s.Endpoints {
		t.AppendRow(append(s.row(e, fmt.Sprintf("%d/%d", e.MaxConnections, s.Quota.Concurrency)), bottleneck(e)))
	}
	total := s.Total
	total.Region = "total"
	t.AppendFooter(append(s.row(total, ""), ""))
	var columns []table.ColumnConfig
	for n := 3; n <= 10; n++ { // the numbers
		columns = append(columns, table.ColumnConfig{Number: n, Align: text.AlignRight, AlignHeader: text.AlignRight, AlignFooter: text.AlignRight})
	}
	t.SetColumnConfigs(columns)
	lines := strings.Split(t.Render(), "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " ")
	}
	return strings.Join(lines, "\n")
}

// row returns an endpoint's cells: its counts, its quota shares and conns.
func (s Summary) row(e EndpointSummary, conns string) table.Row {
	u := e.Utilization
	return table.Row{e.Region, e.Account, group(e.Requests), group(e.InputTokens), group(e.OutputTokens),
		group(e.RateLimited), pct(u.Requests), pct(u.InputTokens), pct(u.OutputTokens), conns}
}

// writeThroughput writes the throughput line and its formula; with a
// foreign client, what it spent comes off each quota.
func (s Summary) writeThroughput(b *strings.Builder) {
	n := float64(s.Total.Requests)
	minutes := 1 + s.WallSeconds/s.MinuteSeconds
	q := s.Quota
	f := s.Total.ForeignServed
	less, use := "", ""
	if f > 0 {
		less, use = ", less what the foreign client spent", " − foreign use"
	}
	fmt.Fprintf(b, "Throughput: %s of the most the quotas allowed in %.1fs%s (%s requests; %s bound it).\n",
		pct(s.Throughput), s.WallSeconds, less, group(int64(s.MaxRequests+0.5)), strings.ReplaceAll(s.Binding, "_", " "))
	fmt.Fprintf(b, "  max = Σ endpoints  min over quotas  (capacity + rate·T%s) / average cost of a request\n", use)
	if f > 0 {
		fmt.Fprintf(b, "  foreign use = its %s calls served × 1/%d of each quota: %s of what the quotas allowed.\n",
			group(f), q.RequestsPerMinute, pct(float64(f)/(float64(q.RequestsPerMinute)*minutes*float64(len(s.Endpoints)))))
		return
	}
	fmt.Fprintf(b, "      = %d × min(%s / 1, %s / %.1f, %s / %.1f) × (1 + T/minute) = %d × %.2f × %.2f\n",
		len(s.Endpoints), group(q.RequestsPerMinute), group(q.InputTokensPerMinute), float64(s.Total.InputTokens)/n,
		group(q.OutputTokensPerMinute), float64(s.Total.OutputTokens)/n,
		len(s.Endpoints), s.MaxRequests/float64(len(s.Endpoints))/minutes, minutes)
}

// bottleneck returns the limit of e that requests waited on longest, with
// its share of all their waits on e ("output 97%"), or "" when none waited.
func bottleneck(e EndpointSummary) string {
	if e.Bottleneck == "" {
		return ""
	}
	var all float64
	for _, w := range e.WaitSeconds {
		all += w
	}
	return shortKey(e.Bottleneck) + " " + pct(e.WaitSeconds[e.Bottleneck]/all)
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
