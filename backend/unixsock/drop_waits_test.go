package unixsock

import (
	"context"
	"fmt"
	"io"
	"net"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// dropWaits queues n waiting acquisitions of a held resource on a raw
// connection, and a victim's behind them from a client, then drops the raw
// connection. It returns the CPU time the process spent from the drop to
// the victim's grant.
func dropWaits(tb testing.TB, n int) time.Duration {
	srv := startServer(tb, ServerOptions{MaxConnWaits: n, MaxWaits: n + 1})
	dropper, err := net.Dial("unix", srv.Path())
	if err != nil {
		tb.Fatal(err)
	}
	defer dropper.Close()
	rawHello(tb, dropper)
	go io.Copy(io.Discard, dropper) // the server says each wait is queued: a client reads what it is sent
	frames := (&wire.Msg{Op: wire.OpOpen, ID: 2, Name: "contended", Specs: connSpecs}).Append(nil)
	frames = (&wire.Msg{Op: wire.OpAcquire, ID: 3, SetID: 1, Values: []int64{1}}).Append(frames)
	for i := range n {
		frames = (&wire.Msg{Op: wire.OpAcquire, ID: uint64(10 + i), SetID: 1, Flags: wire.FlagWait, Values: []int64{1}}).Append(frames)
	}
	if _, err := dropper.Write(frames); err != nil {
		tb.Fatal(err)
	}
	waiting := func(want int64) {
		deadline := time.Now().Add(30 * time.Second)
		for srv.waits.Load() != want {
			if time.Now().After(deadline) {
				tb.Fatalf("%d acquisitions wait, want %d", srv.waits.Load(), want)
			}
			time.Sleep(time.Millisecond) // polling a counter, not a synchronisation
		}
	}
	waiting(int64(n))
	c := dial(tb, srv.Path(), Options{DisableAutoHost: true})
	set, err := c.Open(context.Background(), "contended", connSpecs)
	if err != nil {
		tb.Fatal(err)
	}
	granted := make(chan error, 1)
	go func() {
		ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
		defer cancel()
		l, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{Wait: true})
		if err == nil {
			err = set.Settle(ctx, l, []int64{1}, nil, true, nil)
		}
		granted <- err
	}()
	waiting(int64(n) + 1)
	start := cpuTime(tb)
	dropper.Close()
	if err := <-granted; err != nil {
		tb.Fatal(err)
	}
	return cpuTime(tb) - start
}

// cpuTime returns the CPU time the process has used so far, user and
// system: unlike the time on the clock, it does not count the time other
// processes of a busy machine take.
func cpuTime(tb testing.TB) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		tb.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// TestDropManyWaits: a client that drops tens of thousands of waits (fewer
// under the race detector, which allows 8,128 goroutines) delays another
// client's grant by well under 100ms of CPU: the server fails the dropped
// waits in one pass over the queue and releases the dropped holding before
// it waits for their goroutines, which end without a word to the closed
// connection (it used to wait for them first: 28.6s for 32,768 waits with
// the old queue, 200ms of CPU with the new one).
func TestDropManyWaits(t *testing.T) {
	delay := dropWaits(t, manyWaits)
	t.Logf("the victim was granted after %v of CPU once a client dropped %d waits", delay, manyWaits)
	if delay > 150*time.Millisecond {
		t.Fatalf("a client dropping %d waits delayed another client's grant by %v of CPU", manyWaits, delay)
	}
}

// BenchmarkDropWaits reports how long a client dropping 32,000 waits delays
// another client's grant.
func BenchmarkDropWaits(b *testing.B) {
	for _, n := range []int{1000, manyWaits} {
		b.Run(fmt.Sprint(n), func(b *testing.B) {
			var total time.Duration
			for b.Loop() {
				total += dropWaits(b, n)
			}
			b.ReportMetric(float64(total.Milliseconds())/float64(b.N), "cpu-ms-delay/op")
		})
	}
}
