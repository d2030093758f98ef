// Package concurry shares scarce capacity safely among goroutines, processes
// and hosts: requests per minute, tokens per minute, concurrent connections.
//
// A limit is a plain value: a [RateLimit] (units per window, such as tokens
// per minute), a [CallLimit] (calls per window) or a [ResourceLimit] (a
// counting semaphore, such as connections). Rate and call limits spend their
// capacity with one of five [Algorithm] values: TokenBucket (the default),
// LeakyBucket, SlidingWindow, FixedWindow and GCRA. Several limits may share a
// key when their windows differ, as real quotas do (500 per minute and 10,000
// per day).
//
// A [LimitSet] grants several limits at once, all or nothing. A request names
// the RateLimit keys it needs with the amount it expects to use; every
// CallLimit and ResourceLimit it does not name is added with amount 1.
// [LimitSet.Acquire] blocks until the whole request fits, first come first
// served, without polling; [LimitSet.TryAcquire] never waits. The returned
// [Acquisition] reports real usage with [Acquisition.Update] and settles with
// [Acquisition.Release]: less than requested is refunded where the algorithm
// refunds, more is charged, and resources go back; [LimitSet.Do] does both.
// A LimitSet with no limits grants everything at no cost, so code written
// against limits runs unchanged where none are configured.
//
// A [LimitPool] spreads acquisitions over several sets — regions, accounts,
// API keys — round-robin or at random, and fails over to another set when the
// chosen one is exhausted. [Acquisition.Config] tells the caller which set
// granted, so it knows which endpoint to call.
//
// State lives in a backend: in this process by default (package
// backend/memory), in a server shared by the processes of one host (package
// backend/unixsock), or in Redis (package backend/redis), chosen with
// [WithBackend]. Package worker runs tasks on pools of goroutines that acquire
// from a LimitSet or LimitPool, with retries, a bounded submission queue and
// futures.
package concurry
