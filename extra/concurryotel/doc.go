// Package concurryotel exports the decisions and the state of concurry's
// limiters as OpenTelemetry metrics.
//
// [New] makes a [Metrics] from a metric.MeterProvider. Its [Metrics.Hooks]
// go to concurry.WithHooks of each LimitSet (PoolHooks to a LimitPool's,
// KeyedHooks to KeyedOptions.Hooks) and record every decision as it is made;
// the sets, pools and Keyeds given to [Metrics.Register],
// [Metrics.RegisterPool] and [Metrics.RegisterKeyed] are read (their Stats)
// at each collection for the gauges:
//
//	m, err := concurryotel.New(meterProvider, concurryotel.Options{})
//	set, err := concurry.NewLimitSet(limits, concurry.WithName("openai"), concurry.WithHooks(m.Hooks()))
//	err = m.Register(set)
//
// # Instruments
//
// Recorded by the hooks, as decisions are made:
//
//	name                         instrument        unit           attributes
//	concurry.acquisitions        Int64Counter      {acquisition}  set, backend, outcome; key, algorithm of the key that refused
//	concurry.wait.duration       Float64Histogram  s              set, backend, outcome; key, algorithm of the key that kept it waiting
//	concurry.refunded            Int64Counter      {unit}         set, backend, key, algorithm
//	concurry.overage             Int64Counter      {unit}         set, backend, key, algorithm
//	concurry.feedback            Int64Counter      {feedback}     set, backend, feedback.kind; key, algorithm unless a pause of every key
//	concurry.lease.lost_errors   Int64Counter      {error}        set, backend
//	concurry.pool.acquisitions   Int64Counter      {acquisition}  pool, outcome
//	concurry.pool.wait.duration  Float64Histogram  s              pool, outcome
//
// Observed at each collection, from the Stats of the registered sources:
//
//	concurry.limit.available         Int64ObservableGauge    {unit}         set, backend, key, algorithm, window
//	concurry.limit.in_use            Int64ObservableGauge    {unit}         set, backend, key, algorithm, window
//	concurry.limit.debt              Int64ObservableGauge    {unit}         set, backend, key, algorithm, window
//	concurry.limit.capacity          Int64ObservableGauge    {unit}         set, backend, key, algorithm, window
//	concurry.limit.utilization       Float64ObservableGauge  1              set, backend, key, algorithm, window
//	concurry.degraded.decisions      Int64ObservableCounter  {decision}     set, backend
//	concurry.lease.renewal_failures  Int64ObservableCounter  {renewal}      set, backend
//	concurry.lease.lost              Int64ObservableCounter  {lease}        set, backend
//	concurry.pool.dispatched         Int64ObservableCounter  {acquisition}  pool, pool.index, set
//	concurry.keyed.identities        Int64ObservableGauge    {identity}     set, backend
//	concurry.stats.errors            Int64Counter            {error}        set and backend, or pool and backend
//
// The attributes, all under concurry. ([AttrSet] and its siblings):
// set.name is the set's name (concurry.WithName) or the name given for a
// Keyed; backend is "memory", "unixsock", "redis" (see [BackendName]);
// limit.key and limit.algorithm ("token_bucket", "leaky_bucket",
// "sliding_window", "fixed_window", "gcra", or "semaphore" for a
// ResourceLimit) name a limit, and limit.window a rate limit's window (two
// limits may share a key with different windows); outcome is "granted" or
// the cause of the refusal (concurry.RefusalCause: "would_block",
// "deadline", "canceled", "closed", "unavailable", "invalid"), and for the
// wait of one set of a LimitPool that another set won, "claimed";
// feedback.kind is "pause" or "lower"; pool.name is the name a pool's hooks
// and registration were given.
//
// Acquisitions, waits and the counts of Stats differ in what they cover:
// the hooks count what this process decided, while available, in use and
// debt are the backend's, and so cover every process sharing a set. Lost
// leases appear twice on purpose: concurry.lease.lost counts holdings (from
// Stats), concurry.lease.lost_errors the errors that told their holders
// (an Update and then a Release of one holding both say so).
//
// Registered sets must have distinct names (Register and RegisterPool fail
// with [ErrDuplicateName] otherwise): one collection must not observe two
// values for one series. A failed Stats read (a shared backend unreachable)
// is counted in concurry.stats.errors and handed to otel.Handle; the set's
// gauges are left out of that collection, and the rest is collected as
// usual.
package concurryotel
