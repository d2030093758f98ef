package redis

import (
	"context"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
)

// notifier listens on a set's release channel, which the scripts publish to
// whenever resources come back or units are refunded, and wakes this
// process's waiters. It starts with the first wait that needs it and stops
// with Set.Close. The zero value is ready to use.
type notifier struct {
	mu      sync.Mutex
	gen     chan struct{} // guarded by mu; closed and replaced on every notice
	ps      *redis.PubSub // guarded by mu; nil until started
	ready   chan struct{} // guarded by mu; closed once the first subscription is confirmed or failed
	done    chan struct{} // guarded by mu; closed when run returns
	stopped bool          // guarded by mu
}

// current returns the channel the next notice closes; nil (never ready)
// before the notifier starts.
func (n *notifier) current() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}

// start subscribes once, and waits until the subscription is confirmed (or
// has failed: waiters then rely on their timers), ctx ends, or s closes.
func (n *notifier) start(ctx context.Context, s *Set) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return backend.ErrClosed
	}
	if n.ps == nil {
		n.gen = make(chan struct{})
		n.ready = make(chan struct{})
		n.done = make(chan struct{})
		n.ps = s.b.client.Subscribe(context.Background(), s.channel)
		go n.run(n.ps, n.ready, n.done)
	}
	ready := n.ready
	n.mu.Unlock()
	select {
	case <-ready:
		return nil
	case <-ctx.Done():
		return backend.ContextError(ctx)
	case <-s.closed:
		return backend.ErrClosed
	}
}

// run receives until the subscription is closed. Every message, and every
// (re)subscription or error, wakes the waiters: after a reconnection a notice
// may have been lost, so they look again.
func (n *notifier) run(ps *redis.PubSub, ready, done chan struct{}) {
	defer close(done)
	confirmed := false
	for {
		msg, err := ps.Receive(context.Background())
		if n.isStopped() {
			return
		}
		if !confirmed {
			confirmed = true
			close(ready)
		}
		if _, pong := msg.(*redis.Pong); !pong {
			n.broadcast()
		}
		if err != nil {
			time.Sleep(100 * time.Millisecond) // the server is away: do not spin
		}
	}
}

func (n *notifier) isStopped() bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.stopped
}

func (n *notifier) broadcast() {
	n.mu.Lock()
	defer n.mu.Unlock()
	close(n.gen)
	n.gen = make(chan struct{})
}

// stop closes the subscription and waits for run to return.
func (n *notifier) stop() {
	n.mu.Lock()
	n.stopped = true
	ps, done := n.ps, n.done
	n.mu.Unlock()
	if ps == nil {
		return
	}
	_ = ps.Close()
	<-done
}
