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
// with set.Close. The zero value is ready to use.
type notifier struct {
	mu      sync.Mutex
	gen     chan struct{} // guarded by mu; closed and replaced on every notice; nil until subscribed
	ps      *redis.PubSub // guarded by mu; nil until subscribed
	ready   chan struct{} // guarded by mu; closed once the first subscription is confirmed or failed
	done    chan struct{} // guarded by mu; closed when run returns; nil until started
	stopped bool          // guarded by mu
}

// current returns the channel the next notice closes; nil (never ready)
// until the subscription is confirmed (or has failed).
func (n *notifier) current() <-chan struct{} {
	n.mu.Lock()
	defer n.mu.Unlock()
	return n.gen
}

// start subscribes once, in the background, and waits until the
// subscription is confirmed (or has failed: waiters then rely on their
// timers), ctx ends, or s closes.
func (n *notifier) start(ctx context.Context, s *set) error {
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		return backend.ErrClosed
	}
	if n.done == nil {
		n.ready = make(chan struct{})
		n.done = make(chan struct{})
		go n.run(s.b.client, s.channel, n.ready, n.done)
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

// run subscribes, then receives until the subscription is closed. Every
// message, and every (re)subscription or error, wakes the waiters: after a
// reconnection a notice may have been lost, so they look again.
func (n *notifier) run(client redis.UniversalClient, channel string, ready, done chan struct{}) {
	defer close(done)
	ps := client.Subscribe(context.Background(), channel) // dials: not under mu
	n.mu.Lock()
	if n.stopped {
		n.mu.Unlock()
		_ = ps.Close()
		return
	}
	n.ps = ps
	n.mu.Unlock()
	confirmed := false
	for {
		msg, err := ps.Receive(context.Background())
		if n.isStopped() {
			return
		}
		if !confirmed {
			confirmed = true
			n.mu.Lock()
			n.gen = make(chan struct{})
			n.mu.Unlock()
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
	if done == nil {
		return
	}
	if ps != nil {
		_ = ps.Close()
	}
	<-done
}
