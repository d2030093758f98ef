package redis_test

import (
	"bytes"
	"context"
	"errors"
	"log/slog"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// commandCounter counts the commands a client sends (see hook).
type commandCounter struct{ n atomic.Int64 }

// hook is the counter's go-redis hook: client.AddHook(c.hook()).
func (c *commandCounter) hook() cmdHook { return func(redis.Cmder) { c.n.Add(1) } }

// TestRateOnlyGrantHasNoLease: a request that takes no resource leaves no
// lease in Redis, and its release sends nothing when the usage equals the
// grant (or is less on a limit that does not refund); a refund is one call.
func TestRateOnlyGrantHasNoLease(t *testing.T) {
	client := redistest.Start(t).Client()
	counter := &commandCounter{}
	client.AddHook(counter.hook())
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 1000},
		concurry.RateLimit{Key: "calls", Window: time.Hour, Capacity: 1000, Algorithm: concurry.SlidingWindow},
	}, concurry.WithName(t.Name()), concurry.WithBackend(b))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	leases := func() int64 { return client.ZCard(ctx, "{concurry:"+t.Name()+"}:e").Val() - 1 } // less the definition
	cycle := func(usage concurry.Amounts) (acquire, release int64) {
		t.Helper()
		before := counter.n.Load()
		a, err := ls.TryAcquire(ctx, concurry.Amounts{"tokens": 100, "calls": 10})
		if err != nil {
			t.Fatal(err)
		}
		acquire = counter.n.Load() - before
		if n := leases(); n != 0 {
			t.Fatalf("%d leases recorded for a rate-only grant", n)
		}
		if err := a.Update(usage); err != nil {
			t.Fatal(err)
		}
		before = counter.n.Load()
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
		return acquire, counter.n.Load() - before
	}
	if a, r := cycle(concurry.Amounts{"tokens": 100, "calls": 10}); a != 1 || r != 0 {
		t.Fatalf("usage as granted: %d commands to acquire, %d to release; want 1 and 0", a, r)
	}
	if a, r := cycle(concurry.Amounts{"tokens": 100, "calls": 3}); a != 1 || r != 0 {
		t.Fatalf("less used of a limit that does not refund: %d and %d commands; want 1 and 0", a, r)
	}
	if a, r := cycle(concurry.Amounts{"tokens": 40, "calls": 10}); a != 1 || r != 1 {
		t.Fatalf("a refund: %d and %d commands; want 1 and 1", a, r)
	}
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if st.Limits[0].Available != 1000-240 || st.Limits[1].Available != 1000-30 {
		t.Fatalf("available %d tokens and %d calls, want 760 and 970", st.Limits[0].Available, st.Limits[1].Available)
	}
}

// TestResourceGrantHasALease: a request that takes a resource is recorded
// as a lease until it is released.
func TestResourceGrantHasALease(t *testing.T) {
	client := redistest.Start(t).Client()
	ctx := context.Background()
	set := open(t, cr.New(client, cr.Options{}), backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 2})
	key := "{concurry:" + t.Name() + "}:e"
	lease, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if n := client.ZCard(ctx, key).Val() - 1; n != 1 { // less the definition
		t.Fatalf("%d leases recorded for a grant of a resource, want 1", n)
	}
	if err := set.Settle(ctx, lease, []int64{1}, nil, true, nil); err != nil {
		t.Fatal(err)
	}
	if n := client.ZCard(ctx, key).Val() - 1; n != 0 {
		t.Fatalf("%d leases recorded after the release, want 0", n)
	}
}

// dropProxy forwards connections to a Redis server, and once armed, drops
// the reply to the next command that contains its trigger, closing that
// connection after the server has answered: the command ran, and its
// caller cannot know.
type dropProxy struct {
	l       net.Listener
	target  string
	mu      sync.Mutex
	trigger []byte // guarded by mu; nil when disarmed
	dropped chan struct{}
	wg      sync.WaitGroup
}

func startDropProxy(t *testing.T, target string) *dropProxy {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &dropProxy{l: l, target: target, dropped: make(chan struct{}, 1)}
	p.wg.Go(p.accept)
	t.Cleanup(func() { _ = l.Close(); p.wg.Wait() })
	return p
}

func (p *dropProxy) arm(trigger string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.trigger = []byte(trigger)
}

func (p *dropProxy) accept() {
	for {
		c, err := p.l.Accept()
		if err != nil {
			return
		}
		s, err := net.Dial("tcp", p.target)
		if err != nil {
			_ = c.Close()
			continue
		}
		var drop atomic.Bool
		p.wg.Go(func() { // replies
			buf := make([]byte, 64<<10)
			for {
				n, err := s.Read(buf)
				if n > 0 && drop.Load() {
					_, _ = c.Close(), s.Close()
					p.dropped <- struct{}{}
					return
				}
				if n > 0 {
					_, _ = c.Write(buf[:n])
				}
				if err != nil {
					_ = c.Close()
					return
				}
			}
		})
		p.wg.Go(func() { // commands
			buf := make([]byte, 64<<10)
			for {
				n, err := c.Read(buf)
				if n > 0 {
					p.mu.Lock()
					if p.trigger != nil && bytes.Contains(buf[:n], p.trigger) {
						p.trigger = nil
						drop.Store(true)
					}
					p.mu.Unlock()
					_, _ = s.Write(buf[:n])
				}
				if err != nil {
					_ = s.Close()
					return
				}
			}
		})
	}
}

// TestUnleasedCallsAreNeverResent: the reply to a rate-only acquisition, or
// to the settle of one, is lost after Redis ran it. go-redis resends a
// command whose reply it lost; these are never resent, since Redis could
// not tell the second from the first: the caller gets an error, and what
// the call did is done once.
func TestUnleasedCallsAreNeverResent(t *testing.T) {
	srv := redistest.Start(t)
	proxy := startDropProxy(t, srv.Addr)
	client := redis.NewClient(&redis.Options{Addr: proxy.l.Addr().String(), MaxRetries: 3})
	defer client.Close()
	b := cr.New(client, cr.Options{})
	set := open(t, b, backend.Spec{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: 100})
	ctx := context.Background()
	first, err := set.Acquire(ctx, []int64{50}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	proxy.arm(cr.FunctionName("acquire"))
	if _, err := set.Acquire(ctx, []int64{30}, backend.AcquireOptions{}); !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("an acquisition whose reply was lost: %v, want ErrBackendUnavailable", err)
	}
	<-proxy.dropped
	if got := available(t, set)[0]; got != 20 {
		t.Fatalf("%d available after 50 and 30 taken, the reply of the 30 lost; want 20 (taken once)", got)
	}
	proxy.arm(cr.FunctionName("settle"))
	if err := set.Settle(ctx, first, []int64{50}, []int64{-50}, true, nil); !errors.Is(err, backend.ErrBackendUnavailable) {
		t.Fatalf("a settle whose reply was lost: %v, want ErrBackendUnavailable", err)
	}
	<-proxy.dropped
	if got := available(t, set)[0]; got != 70 {
		t.Fatalf("%d available after a refund of 50 whose reply was lost; want 70 (refunded once)", got)
	}
}

// TestUnleasedSettleGivenUpIsCounted: the settle of a rate-only grant whose
// caller gives up (Redis stalls) goes on in the background; when it fails
// (Redis is killed), the failure is counted in Degraded and logged, as a
// lease's settle's is.
func TestUnleasedSettleGivenUpIsCounted(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{Logger: slog.New(rec)})
	set := open(t, b, backend.Spec{Key: "tokens", Kind: backend.Rate, Window: time.Hour, Capacity: 100})
	lease, err := set.Acquire(context.Background(), []int64{50}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := set.Settle(ctx, lease, []int64{50}, []int64{-50}, true, nil); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a settle with redis stalled: %v, want context.DeadlineExceeded", err)
	}
	srv.Kill()
	cr.WaitBackground(set)
	if d := b.Degraded(t.Name()); d != 1 {
		t.Fatalf("Degraded = %d after a settle that failed in the background, want 1", d)
	}
	rec.await(t, "its usage was not applied", 5*time.Second)
}
