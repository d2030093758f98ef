// Package concurryprom exports the decisions and the state of concurry's
// limiters as Prometheus metrics.
//
// [NewCollector] makes a [Collector], a prometheus.Collector to register
// with a prometheus.Registerer. Its [Collector.Hooks] go to
// concurry.WithHooks of each LimitSet (PoolHooks to a LimitPool's,
// KeyedHooks to KeyedOptions.Hooks) and record every decision as it is made;
// the sets, pools and Keyeds given to [Collector.Register],
// [Collector.RegisterPool] and [Collector.RegisterKeyed] are read (their
// Stats) at each scrape for the gauges:
//
//	c, err := concurryprom.NewCollector(concurryprom.Options{})
//	prometheus.MustRegister(c)
//	set, err := concurry.NewLimitSet(limits, concurry.WithName("openai"), concurry.WithHooks(c.Hooks()))
//	err = c.Register(set)
//
// # Metrics
//
// Recorded by the hooks, as decisions are made:
//
//	name                               type       labels
//	concurry_acquisitions_total        counter    set, backend, outcome, key, algorithm (key and algorithm of the key that refused, else "")
//	concurry_wait_seconds              histogram  set, backend, outcome, key, algorithm (of the key that kept it waiting)
//	concurry_refunded_units_total      counter    set, backend, key, algorithm
//	concurry_overage_units_total       counter    set, backend, key, algorithm
//	concurry_feedback_total            counter    set, backend, kind, key, algorithm ("" for a pause of every key)
//	concurry_lease_lost_errors_total   counter    set, backend
//	concurry_pool_acquisitions_total   counter    pool, outcome
//	concurry_pool_wait_seconds         histogram  pool, outcome
//
// Read at each scrape, from the Stats of the registered sources:
//
//	concurry_limit_available               gauge    set, backend, key, algorithm, window
//	concurry_limit_in_use                  gauge    set, backend, key, algorithm, window
//	concurry_limit_debt                    gauge    set, backend, key, algorithm, window
//	concurry_limit_capacity                gauge    set, backend, key, algorithm, window
//	concurry_limit_utilization_ratio       gauge    set, backend, key, algorithm, window
//	concurry_degraded_decisions_total      counter  set, backend
//	concurry_lease_renewal_failures_total  counter  set, backend
//	concurry_leases_lost_total             counter  set, backend
//	concurry_pool_dispatched_total         counter  pool, index, set
//	concurry_keyed_identities              gauge    set, backend
//	concurry_stats_errors_total            counter  set, pool, backend (set for a set's read, pool for a pool's)
//
// The labels ([LabelSet] and its siblings): set is the set's name
// (concurry.WithName) or the name given for a Keyed; backend is "memory",
// "unixsock", "redis" (see [BackendName]); key and algorithm
// ("token_bucket", "leaky_bucket", "sliding_window", "fixed_window",
// "gcra", or "semaphore" for a ResourceLimit) name a limit, and window a
// rate limit's window as a Go duration ("1m0s"; two limits may share a key
// with different windows); outcome is "granted" or the cause of the refusal
// (concurry.RefusalCause: "would_block", "deadline", "canceled", "closed",
// "unavailable", "invalid"), and for the wait of one set of a LimitPool that
// another set won, "claimed"; kind is "pause" or "lower"; pool is the name a
// pool's hooks and registration were given. Amounts are in the units of
// each limit (tokens, calls, connections), so their names carry "units".
//
// Acquisitions, waits and the counts of Stats differ in what they cover:
// the hooks count what this process decided, while available, in use and
// debt are the backend's, and so cover every process sharing a set. Lost
// leases appear twice on purpose: concurry_leases_lost_total counts
// holdings (from Stats), concurry_lease_lost_errors_total the errors that
// told their holders (an Update and then a Release of one holding both say
// so).
//
// Registered sets must have distinct names (Register and RegisterPool fail
// with [ErrDuplicateName] otherwise): a scrape must not hold two series of
// one name and labels. A failed Stats read (a shared backend unreachable)
// is counted in concurry_stats_errors_total and logged to Options.Logger;
// the set's gauges are left out of that scrape, which succeeds with the
// rest.
package concurryprom
