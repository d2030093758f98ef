// Package redis is the distributed backend of concurry: processes on many
// hosts share one set of limits kept in Redis, Valkey or a Redis Cluster,
// through github.com/redis/go-redis/v9 (any redis.UniversalClient: a single
// node, Sentinel or Cluster).
//
//	client := goredis.NewUniversalClient(&goredis.UniversalOptions{Addrs: []string{"10.0.0.5:6379"}})
//	b := redis.New(client, redis.Options{})
//	set, err := concurry.NewLimitSet(limits, concurry.WithName("openai"), concurry.WithBackend(b))
//
// # Model
//
// Every key of a set carries the hash tag {Prefix:name}, so a whole
// multi-limit request is one Lua call on one slot: atomic across all its
// limits, one round trip, and Cluster-safe. On Redis 7 and later (and
// Valkey) the Lua code is a function library, loaded with FUNCTION LOAD on
// every master the first time a server lacks it, and each call is an FCALL:
// the library is compiled and set up once, not on every call. Its name
// carries a digest of the code, so processes running different versions of
// this package share a server without replacing each other's functions.
// The library keeps every definition it has parsed (up to 256), so a call
// sends the set's parameters as a short form (their SHA-1); a server whose
// library lacks them answers before doing anything, and the call is sent
// again with the whole parameters. Where functions are missing or
// forbidden (older servers, ACLs), the calls run as scripts with EVALSHA,
// falling back to EVAL on NOSCRIPT, always with the whole parameters. Time is
// Redis TIME read inside the call, so hosts with skewed clocks agree; a
// set's clock never goes backwards.
//
// A set keeps the state of all its limits in one string key, read with one
// GET and written with one SETRANGE per call (a SET when its expiry
// moves), its leases in a sorted set, the
// records of lost leases (below) in another, and upstream feedback (below)
// in a hash that only calls during a pause read; SlidingWindow limits also
// keep a list of their entries. A narrow set, one of rate limits alone
// without SlidingWindow (a Keyed's calls and tokens per identity), keeps
// everything in its state key, its pauses, upstream reports and definition
// too, and its calls name that key alone: each key a call names is a string
// Redis makes anew for it, a cost that grows once identities rotate. Its
// state ends with its definition, which its calls leave in place. The
// first process to use a name stores the limit definitions; a set that
// finds other definitions fails with backend.ErrLimitMismatch (so does a
// process of an older version of this package: the stored format is
// "concurry/4", and a narrow set's state written before narrow sets is
// refused too). Every key expires one to
// two seconds after the set would be back at its initial state (buckets
// full, windows empty), its last pause ended, its last lease expired and
// its last lost-lease record was dropped, so idle sets do not fill Redis;
// the definitions go with them. Never before: an expiry resets no budget.
// A busy set moves those expiries about once a second, not on every call.
//
// concurry.NewKeyed over this backend names each identity's set Name +
// "/" + identity, so each identity's keys have a hash tag of their own: a
// Cluster spreads identities over its slots, and an identity's keys leave
// Redis once its limits are full again. A set does not implement
// backend.Idler (whether a shared set is idle takes a call), so Keyed
// forgets the local handle of every identity it is not using.
//
// [Backend.OpenLazy] (backend.LazyOpener) opens a set without the call
// Open makes to check its definitions against Redis's: every call of a set
// checks them anyway, so the set's first call fails with
// backend.ErrLimitMismatch instead of Open when Redis holds others, and a
// set that is opened to be used at once costs one round trip, not two.
// Keyed opens its identities' sets so: a new identity's first request, or
// the first after Keyed forgot it, is one round trip, as any other is.
//
// # Semantics and exactness
//
// All five algorithms and ResourceLimit behave as in package
// [github.com/concurry/concurry/algorithms] and the in-memory backend,
// refunds and overage included, with two differences of granularity:
// instants are whole microseconds (not nanoseconds), and windows are rounded
// up to a whole microsecond. So when Window/Capacity is not a whole number of
// microseconds, back-to-back LeakyBucket departures round up to the next µs
// (not ns), which a queue beyond its capacity shows as more debt, and the
// instants a blocked request is told to wait for round up to the µs.
// Decisions at whole-µs instants are otherwise identical.
//
// The range of limits is the contract's, the same on every backend
// (backend.CheckSpecs): capacities up to 2^50 and windows up to 366 days;
// Open refuses anything else with backend.ErrInvalidLimit. Lua numbers are
// doubles, exact for integers below 2^53, and the scripts use nothing else:
// every quantity they store or compare is an integer, and every sum stays
// below 2^53. Instants are µs since the Unix epoch (below 2^52 until the
// year 2112), windows below 2^45 µs, amounts at most 2^50; the deltas a
// settle charges are clamped to ±2^52, and debts, counters and instants
// saturate at 2^52. A SlidingWindow keeps its sum below 2·Capacity however
// much overage it is charged: entries older than newer ones that already
// fill the window are dropped, which changes no decision (no request fits
// while those newer ones count, and the older ones expire first). Rates are
// the fraction C/W reduced by gcd(C, W), kept as whole units plus a
// remainder. A product of two such numbers that reaches 2^52 is divided by
// an exact double-and-add routine instead of the FPU, so the arithmetic is
// exact on the whole range, not only for round limits; round limits (a
// capacity and a window that share factors, as in 10,000 per minute or 2M
// per day) never need that slower path.
//
// # Acquisitions and leases
//
// An acquisition that takes a resource has an id chosen by the client at
// random (62 bits), recorded in Redis with the granted amounts as a lease.
// Acquire with an id that was already granted returns that grant, so a
// retried call (go-redis resends a command whose reply it lost) never
// charges twice. Its full cycle is two round trips: the acquisition, and
// the settle at Release, which applies the usage once, ends the lease and
// never refunds more than was granted. (Deltas of non-final settles, which
// the root package does not make, are added up in the process and sent with
// the final one.)
//
// An acquisition of rate limits only holds nothing that could leak, so it
// is not recorded: no lease, nothing to renew, one round trip. Its release
// sends nothing when the usage equals the grant (or is less, on limits that
// do not refund); otherwise one settle applies the usage, refunding at most
// what was granted. Since Redis could not tell a repeated call of these from
// the first, go-redis is told never to resend them (a command's NoRetry):
// a reply lost after Redis ran the call fails it with an error matching
// backend.ErrBackendUnavailable, and what it took (or refunded) is done
// once.
//
// A lease lives Options.LeaseTTL (30 s by default) in Redis. The process
// renews all the leases it holds in one call every LeaseTTL/3; a renewal
// never revives a lease that has expired. If the holder dies, its resource
// units come back when its leases expire. Exclusivity holds exactly while
// renewals succeed: a lease renewed at instant r (Redis time) is held until
// r + LeaseTTL, and the next renewal is sent LeaseTTL/3 after the previous
// one returned, so a stall of the holder or of Redis (a pause, SIGSTOP, a
// slow command) shorter than LeaseTTL − LeaseTTL/3, less the renewal's round
// trip, revokes nothing; a longer one may. A renewal that fails is counted
// (Stats.RenewFailures, through backend.FaultCounter) and logged
// (Options.Logger); the lease survives failed renewals until it expires.
//
// A lease that expired before its release is lost: its resource units went
// back when it expired, possibly to another holder. The holder is told:
// the set's CheckLease (no I/O) reports it once a renewal found the lease
// gone or none has succeeded for a whole LeaseTTL, and the settle at
// Release returns an error matching backend.ErrLeaseLost. The usage
// reported to a lost lease is not the lease's, and is still charged (and
// refunded where the algorithm refunds): an expired lease leaves a record
// that its settle finds for an hour, and the settle replaces it with a
// tombstone, so a retried settle charges nothing twice. Only a holder that
// comes back more than an hour after its lease expired finds no record:
// its usage is not charged, and the error says so. So does a holder whose
// lease Redis lost with its data (a restart without persistence): a settle
// is not resent by go-redis, so a lease the script does not know when the
// caller hears its reply was not settled before. A settle that fails (Redis
// unreachable) of a lease known to be lost also matches
// backend.ErrLeaseLost, and says its usage may not have been charged. Lost
// leases are counted (Stats.LeasesLost) and logged.
//
// A settle that could not reach Redis (an error matching
// backend.ErrBackendUnavailable: its usage may not have been charged) is
// not dropped: it is retried in the background, backing off from 50 ms to a
// second, until a lease TTL after the lease would have expired. So the
// resources of a Release made while Redis was away come back as soon as it
// answers again, not when the lease expires, and its usage is charged then.
// A retry of a settle that was applied after all (only its reply was lost)
// finds the lease gone and changes nothing. The same holds for giving back
// a leased grant whose caller had gone. Giving up is logged.
//
// # Refusals
//
// A refusal says why and when, computed in the script by the algorithms:
// a non-waiting Acquire that cannot be granted, and a wait whose deadline
// comes before its grant, fail with a *backend.RefusalError (matching
// backend.ErrWouldBlock, or context.DeadlineExceeded) that names the key
// that blocked and RetryAfter: how long, in Redis time, until the whole
// request fits if nothing else changes; 0 when a resource is short, since
// only a release can make room. Behind waiters of this process the refusal
// is Queued, and its facts are projected through them. Acquire fills
// backend.AcquireOptions.Report (whether the request waited, what blocked
// it, for how long, and whether the outage policy decided) and calls
// OnWait as the wait starts, from the caller's goroutine.
//
// # Feedback
//
// A set implements backend.Feedback for every process sharing it: Pause
// stores in the set's state that a spec (or every spec) grants nothing
// until an instant, never shortening a longer pause; Lower takes at once
// what leaves at most the reported amount available, and ignores a report
// older than the newest applied to that spec. Each is one script call,
// which publishes a notice so that waiters in every process look again:
// they then sleep until the pause ends, or fail at once when it passes
// their deadline.
//
// # Waiting
//
// A blocked Acquire never polls: the script returns the instant the request
// could succeed, and the client sleeps until then (minus the last round
// trip, so that its next attempt reaches Redis about when it is due). It
// also wakes on a pub/sub notice that the scripts publish when units come
// back (resources released, units refunded) and on feedback; while
// resources are short it sleeps until the earliest lease expiry at most. A
// wake-up that loses a race (the units it woke for went to another process
// first) sleeps again with a little jitter (Options.Jitter).
//
// A waiter's grant is dated at the instant it became possible, not at the
// instant its attempt reached Redis: each attempt of a waiter carries a
// hint, the instant its last refusal said it was due or the instant the
// waiter ahead of it was granted at, and the script evaluates the rate
// limits from there on (never before the latest instant any call evaluated
// them at, nor before the request existed). So the time a waiter takes to
// wake up and reach Redis is not lost from the schedule: saturated by 64
// waiters, 1,000/s with a burst of 1 grants within 0.3 % of what it allows.
//
// A ctx deadline before the instant the rate limits could grant fails at
// once with an error matching context.DeadlineExceeded: for the head of the
// queue from the script's answer, and for a request that joins behind other
// waiters of its process from a projection through them (each granted as
// soon as it can, in order, on copies of the state), as the in-memory
// backend does.
//
// Ordering is first come, first served within one process: its blocked
// requests wait in a FIFO queue, only the head makes attempts, and TryAcquire
// fails while the queue is not empty. Every set of one name opened through
// one Backend (several LimitSets, or Keyed's handle and a LimitSet of the
// same identity) shares that queue, as on the in-memory backend; Close of
// one wakes only its own waiters, and the last Close drops the queue.
// Across processes ordering is
// best-effort: each process's head attempts at its own wake-up instant and
// whichever attempt reaches Redis first wins, so a large request of one
// process can be overtaken by small requests of others.
//
// A LimitPool waits on several sets with a shared claim. While the claim is
// untaken the script runs in check mode, which takes nothing; only when it
// says the request fits now does the set take the claim and then run the
// script for real. If another process takes the units in between, the set
// that holds the claim keeps waiting for them: no other set of the pool
// grants, and nothing is granted and given back.
//
// # Contexts and outages
//
// Every call returns by its ctx's end (Acquire, TryAcquire, Settle, Stats,
// Open), with ctx's error, even when Redis does not answer: go-redis bounds
// its calls by its own timeouts, not by ctx. The call that was in flight
// goes on in the background, bounded by those timeouts, so that its outcome
// is known: an acquisition that Redis grants to a caller that is gone (or
// whose ctx ended as the grant came) is given back at once, as though it
// had not been made: the reply dates every grant, and the undo takes its
// units back as of that instant, from a FixedWindow's count while its
// window is counted, from its own SlidingWindow entry while it counts, off
// a LeakyBucket's queue (unless charged usage or upstream feedback queued
// units behind it since), and as a refund from the buckets (TokenBucket,
// GCRA). One exception: a grant that reached Redis twice (go-redis resent
// the call after a network error) is dated by the second arrival, so the
// units of a SlidingWindow or LeakyBucket grant given back then stay
// spent. One whose answer never comes is logged; if Redis granted it, its
// lease is ended by a settle that is retried until Redis answers (or, if
// that settle reached Redis first, expires unrenewed within LeaseTTL), and
// its rate units stay taken (the instant to date them by is unknown).
// Nothing is granted and forgotten.
//
// When Redis cannot be reached, a Backend with FailClosed (the default)
// fails Acquire with an error matching backend.ErrBackendUnavailable, and one
// with FailOpen grants at once without limits; either way the decision is
// counted in [Backend.Degraded] and Stats.Degraded, reported in
// AcquireReport.Degraded, and logged (at most a line a second per set, with
// how many decisions were made since the last), and the change from
// reachable to unreachable and back is logged. A call whose outcome is
// unknown is never replayed with a new id.
package redis
