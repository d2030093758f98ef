package redis

import (
	"context"
	"errors"
	"sync"

	"github.com/concurry/concurry/backend"
)

// inflight is a call that may outlive its caller.
type inflight struct {
	done chan struct{} // closed once res and err are set
	res  any
	err  error

	mu        sync.Mutex
	finished  bool // guarded by mu: res and err are set
	abandoned bool // guarded by mu: the caller gave up; late gets the outcome
}

// do runs entry e with args (from newArgs) like run, but returns when ctx
// ends, with ctx's error, even if Redis has not answered: go-redis bounds a
// call by its own timeouts, not by ctx, and a stalled server would hold the
// caller for as long as they allow. The call itself is not abandoned: it
// goes on in the background, bounded by go-redis's timeouts, so that its
// outcome is known, and late, when not nil, gets that outcome. A ctx that
// can never end costs no goroutine. once is run's.
func (s *set) do(ctx context.Context, e entry, args []any, late func(any, error), once bool) (any, error) {
	if ctx.Done() == nil {
		return s.run(ctx, e, args, once) // no closure to allocate
	}
	return s.async(ctx, func(ctx context.Context) (any, error) { return s.run(ctx, e, args, once) }, late)
}

// async runs call as do runs a script call.
func (s *set) async(ctx context.Context, call func(context.Context) (any, error), late func(any, error)) (any, error) {
	if ctx.Done() == nil {
		return call(ctx)
	}
	if ctx.Err() != nil {
		return nil, backend.ContextError(ctx)
	}
	c := &inflight{done: make(chan struct{})}
	bg := context.WithoutCancel(ctx)
	s.bg.Add(1)
	go func() {
		defer s.bg.Done()
		res, err := call(bg)
		c.mu.Lock()
		c.res, c.err, c.finished = res, err, true
		abandoned := c.abandoned
		c.mu.Unlock()
		close(c.done)
		if abandoned && late != nil {
			late(res, err)
		}
	}()
	select {
	case <-c.done:
		return c.res, c.err
	case <-ctx.Done():
	}
	c.mu.Lock()
	if c.finished {
		c.mu.Unlock()
		<-c.done
		return c.res, c.err
	}
	c.abandoned = true
	c.mu.Unlock()
	return nil, &abandonedError{backend.ContextError(ctx)}
}

// abandonedError is do's error for a call whose caller gave up: it matches
// ctx's error.
type abandonedError struct{ err error }

func (e *abandonedError) Error() string {
	return "concurry: redis did not answer before the context ended: " + e.err.Error()
}

func (e *abandonedError) Unwrap() error { return e.err }

// isAbandoned reports whether err is do's error for a call whose caller
// gave up.
func isAbandoned(err error) bool {
	var a *abandonedError
	return errors.As(err, &a)
}
