// Package worker runs tasks on pools of actors that share concurry's limits.
//
// A [Pool] holds workers, each owning one value of a type T built by a
// factory: an HTTP client with its credentials, a model, a connection. A
// worker runs the tasks submitted to it one at a time, in submission order,
// so T needs no locks. A [Task] receives the worker's value and a
// concurry.Limiter, never nil, from which it acquires the limits of each
// call:
//
//	pool, err := worker.NewPool(ctx, newClient, worker.Options{
//		MaxWorkers: 8,
//		Limiter:    limits, // a *concurry.LimitSet shared by all eight
//		NumRetries: 3,
//	})
//	f, err := worker.Submit(ctx, pool, func(ctx context.Context, c *Client, lim concurry.Limiter) (string, error) {
//		return c.Complete(ctx, lim, prompt)
//	})
//	text, err := f.Result(ctx)
//	err = pool.Stop(ctx)
//
// Tasks that need no value of their own take the short form: [New] makes a
// pool without a factory and [Func] a task without a value.
//
// [Options] chooses the mode (Goroutine workers, Sync in the caller, or
// OnDemand values built per task), the balancing between workers, each
// worker's submission queue, the limits (one shared Limiter, private Limits
// per worker, or a LimitPool per worker over LimitSets), and retries: how
// many, on which errors ([RetryOnErrors], [RetryOnType]), with which waits,
// and, per submission, on which results ([RetryUntil]). A task asks for a
// longer wait by returning a [RetryAfterError]. Every attempt acquires its
// limits anew; what an attempt leaves acquired is released when it ends.
// [Pool.Limiter] returns each worker's limiter — the private
// *concurry.LimitSet of Options.Limits, say, with its Stats — and [Unwrap]
// returns it from inside a task.
//
// Without Options.RetryOn, errors a retry can never cure are not retried
// ([DefaultRetryOn]): requests the limits can never grant
// (concurry.ErrInvalidRequest, ErrExceedsCapacity, ErrUnknownKey), closed or
// mismatched sets, panics, runtime.Goexit, invalid options, and ended
// contexts; every other error is. No error is retried once the task's
// context has ended.
//
// [Submit] returns a [Future]; [Run] waits for the result. [Gather] collects
// the results of many futures in input order, and [Wait] returns when all,
// the first, or the first failing of them complete. A panic in a task becomes
// its error, a [PanicError] with the stack, and the worker goes on; so do
// panics of the factory, Close, RetryOn, RetryUntil and WithProgress
// callbacks. A task that calls runtime.Goexit (as t.FailNow does) fails with
// [ErrGoexit], and its worker goes on with the same value in a new goroutine.
// A task may submit to its own pool; a submission that could only wait for
// the task itself fails at once with [ErrDeadlock]. [Pool.Stop] cancels or
// drains what is queued and returns when every goroutine of the pool has
// exited, every future completed.
//
// A round trip is cheap: Submit allocates the future and the task's record
// (144 bytes for an int result), Run only the record, and a task's context
// costs nothing until the task uses it. A completed future keeps only the
// outcome (40 bytes plus R), so holding many costs little.
package worker
