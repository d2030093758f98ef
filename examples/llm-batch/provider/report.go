package provider

import "time"

// AccountReport is the provider's own accounting of one (region, account).
type AccountReport struct {
	Region, Account string
	// Served counts the calls admitted and answered; Rejected the 429s
	// sent by the provider's own accounting, and RejectedByDimension the
	// same by the quota that refused: "requests", "input_tokens",
	// "output_tokens", "tokens" or DimConcurrency.
	Served, Rejected    int64
	RejectedByDimension map[string]int64
	// InputTokens and OutputTokens are the tokens of the calls served.
	InputTokens, OutputTokens int64
	// MaxInFlight is the most calls served at once.
	MaxInFlight int64
	// ForeignServed and ForeignRejected count the foreign client's calls
	// admitted and refused (Options.ForeignShare); they are not in Served
	// or Rejected.
	ForeignServed, ForeignRejected int64
}

// Report returns the provider's accounting now, account by account:
// regions, then accounts, in Options order.
func (s *Server) Report() []AccountReport {
	now := time.Now()
	out := make([]AccountReport, 0, len(s.order))
	for _, a := range s.order {
		out = append(out, a.report(now))
	}
	return out
}
