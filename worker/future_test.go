package worker

import (
	"context"
	"fmt"
	"sync"
	"testing"

	"github.com/concurry/concurry/internal/testutil"
)

// Every way of waiting on a future, begun as it completes, ends with its
// result: Done, whose channel and waiters are made on first use; a Gather
// or Wait watcher; Result with a context that never ends (a parker) and
// with one that can. complete swaps one word and then looks for the
// waiters; whoever makes them looks at that word after, so one of the two
// always sees the other.
func TestFutureWaitersRaceItsCompletion(t *testing.T) {
	parkers := new(sync.Pool)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	const rounds, waiters = 3000, 8
	for n := range rounds {
		f := newFuture[int](parkers)
		start := make(chan struct{})
		failed := make(chan string, waiters)
		var wg sync.WaitGroup
		for k := range waiters {
			wg.Go(func() {
				<-start
				var v int
				var err error
				switch k % 4 {
				case 0:
					<-f.Done()
					v, err = f.Result(ctx)
				case 1:
					ch := make(chan int, 1)
					f.watch(ch, k)
					if i := <-ch; i != k {
						failed <- fmt.Sprintf("watcher %d told %d", k, i)
					}
					v, err = f.val, f.err
				case 2:
					v, err = f.Result(context.Background())
				case 3:
					v, err = f.Result(ctx)
				}
				if v != n || err != nil {
					failed <- fmt.Sprintf("waiter %d: %d, %v; want %d", k, v, err, n)
				}
			})
		}
		close(start)
		f.complete(n, nil)
		testutil.WaitOrFail(t, &wg, fmt.Sprintf("round %d: a waiter missed the completion", n))
		close(failed)
		for msg := range failed {
			t.Fatal(msg)
		}
		if !f.Completed() || f.Done() != closedChan {
			t.Fatalf("round %d: completed %v", n, f.Completed())
		}
	}
}

// A watcher removed before the future completes is not told.
func TestUnwatchedWatcherIsNotTold(t *testing.T) {
	f := newFuture[int](new(sync.Pool))
	mine, other := make(chan int, 1), make(chan int, 1)
	f.watch(mine, 1)
	f.watch(other, 2)
	f.unwatch(mine)
	f.complete(7, nil)
	if len(mine) != 0 || <-other != 2 {
		t.Fatalf("told %d times the unwatched, not the other", len(mine))
	}
	f.unwatch(other) // after completion: nothing to remove
	f.watch(mine, 3) // after completion: told at once
	if <-mine != 3 {
		t.Fatal("a watcher after completion was not told")
	}
}
