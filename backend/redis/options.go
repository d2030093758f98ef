package redis

import (
	"log/slog"
	"time"

	"github.com/concurry/concurry/backend"
)

// OutagePolicy says what a set does when Redis cannot be reached.
type OutagePolicy uint8

const (
	// FailClosed refuses: Acquire fails with an error matching
	// backend.ErrBackendUnavailable. It is the default.
	FailClosed OutagePolicy = iota
	// FailOpen grants every request at once, without limits, while Redis
	// cannot be reached; such grants are not charged and their Settle does
	// nothing.
	FailOpen
)

// String returns "FailClosed" or "FailOpen".
func (p OutagePolicy) String() string {
	if p == FailOpen {
		return "FailOpen"
	}
	return "FailClosed"
}

// Options configure a Backend. The zero value is ready to use: every zero
// field means its default.
type Options struct {
	// Prefix starts every key; a set named n keeps its state under the hash
	// tag {Prefix:n}. Default "concurry".
	Prefix string
	// LeaseTTL is how long an acquisition's lease lives in Redis without
	// renewal. The holding process renews its leases every LeaseTTL/3 while
	// it holds them, so the units of a crashed holder come back at most
	// LeaseTTL after its last renewal, and a holder (or Redis) that stalls
	// for less than LeaseTTL − LeaseTTL/3 loses nothing (see the package
	// documentation for the exact bound). Default 30 s; values below 10 ms
	// are raised to 10 ms and values above 366 days lowered to 366 days.
	LeaseTTL time.Duration
	// Outage selects what the sets of this Backend do while Redis cannot be
	// reached. Default FailClosed. To give sets different policies, create
	// one Backend per policy over the same client: a Backend is cheap.
	Outage OutagePolicy
	// Jitter is the largest random delay added to the wake-up of a blocked
	// Acquire that lost a race for the units it woke for (another process
	// took them first), so that processes woken for the same instant do not
	// keep reaching Redis at once. A wake-up that has not lost a race is not
	// delayed. Default 1 ms; negative means none.
	Jitter time.Duration
	// RenewTimeout bounds one lease renewal call. Default LeaseTTL/3.
	RenewTimeout time.Duration
	// Logger receives what the backend does in the background or decides
	// on its own: failed lease renewals and lost leases (Warn), Redis
	// becoming unreachable (Warn) and reachable again (Info), decisions made
	// by the outage policy (Warn, at most one line a second per set, with how
	// many were made since the line before), calls whose caller gave up
	// before Redis answered and how they were reconciled (Info, or Warn when
	// the outcome stays unknown). Default: discard.
	Logger *slog.Logger
}

const (
	defaultPrefix   = "concurry"
	defaultLeaseTTL = 30 * time.Second
	defaultJitter   = time.Millisecond
	minLeaseTTL     = 10 * time.Millisecond
	maxLeaseTTL     = backend.MaxWindow
)

// withDefaults returns o with every zero field replaced by its default and
// LeaseTTL brought into its range.
func (o Options) withDefaults() Options {
	if o.Prefix == "" {
		o.Prefix = defaultPrefix
	}
	if o.LeaseTTL <= 0 {
		o.LeaseTTL = defaultLeaseTTL
	}
	o.LeaseTTL = min(max(o.LeaseTTL, minLeaseTTL), maxLeaseTTL)
	if o.Jitter == 0 {
		o.Jitter = defaultJitter
	}
	if o.RenewTimeout <= 0 {
		o.RenewTimeout = o.LeaseTTL / 3
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}
