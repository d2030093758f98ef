package unixsock

import (
	"context"
	"fmt"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

var _ backend.Feedback = (*clientSet)(nil)

// Pause implements backend.Feedback: the server's set grants nothing from
// spec (every spec when spec < 0) before until (Unix nanoseconds), for
// every process that shares it; their waiters wake at until. A pause never
// shortens a longer one. It waits for the server to apply it, and fails
// with backend.ErrClosed after Close, for a spec the set does not have, and
// as any request does when the server cannot be reached.
func (s *clientSet) Pause(ctx context.Context, spec int, until int64) error {
	if spec >= len(s.specs) {
		return fmt.Errorf("concurry: pause of limit %d: the set has %d limits", spec, len(s.specs))
	}
	return s.feedback(ctx, &wire.Msg{Op: wire.OpPause, Spec: int64(max(spec, -1)), Until: until})
}

// Lower implements backend.Feedback: it lowers what rate spec has available
// now in the server's set to at most remaining, for every process that
// shares it, taking the difference now (as debt where the algorithm keeps
// debt). A report older (asOf, Unix nanoseconds) than one already applied
// to spec lowers nothing. It waits for the server to apply it, and fails
// with backend.ErrClosed after Close, for a spec the set does not have or
// that is a resource, and as any request does when the server cannot be
// reached.
func (s *clientSet) Lower(ctx context.Context, spec int, remaining, asOf int64) error {
	switch {
	case spec < 0 || spec >= len(s.specs):
		return fmt.Errorf("concurry: lower of limit %d: the set has %d limits", spec, len(s.specs))
	case s.specs[spec].Kind == backend.Resource:
		return fmt.Errorf("concurry: lower of limit %d (%q): a resource limit has no rate to lower", spec, s.specs[spec].Key)
	}
	return s.feedback(ctx, &wire.Msg{Op: wire.OpLower, Spec: int64(spec), Remaining: remaining, AsOf: asOf})
}

// feedback sends m, a Pause or Lower, and waits for the server to apply it.
func (s *clientSet) feedback(ctx context.Context, m *wire.Msg) error {
	if s.closed.Load() {
		return backend.ErrClosed
	}
	b, err := s.bind(ctx)
	if err != nil {
		return err
	}
	m.SetID = b.sid
	cl, err := b.cc.request(ctx, m)
	if err == nil {
		cl.free()
	}
	return err
}
