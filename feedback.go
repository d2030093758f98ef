package concurry

import (
	"context"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/concurry/concurry/backend"
)

// ErrFeedbackUnsupported reports feedback given to a set whose backend does
// not implement backend.Feedback.
var ErrFeedbackUnsupported = errors.New("concurry: the set's backend takes no upstream feedback")

// Pause tells the set that its upstream refuses everything until until —
// a 429 or 503 answered with Retry-After, say. Nothing is granted from key's
// limits (every limit of the set when key is "") before until, waiters wake
// at until, and every process sharing the set pauses too. A pause never
// shortens a longer one already in force, and a pause that has already
// ended does nothing (it is not counted in Stats' Feedback, nor passed to
// the Feedback hook). It fails with ErrUnknownKey for a key the set lacks.
// On an empty set Pause does nothing.
func (ls *LimitSet) Pause(ctx context.Context, key string, until time.Time) error {
	f, spec, err := ls.feedback(key, true)
	if err != nil || f == nil {
		return err
	}
	if until.After(maxPause) {
		until = maxPause // UnixNano of a later instant overflows into the past
	}
	if err := f.Pause(ctx, spec, until.UnixNano()); err != nil {
		return notApplied(err)
	}
	addCount(&ls.perLimit[max(spec, 0)].feedback, 1)
	if h := ls.hooks; h != nil && h.Feedback != nil {
		callHook(h.Feedback, FeedbackInfo{Set: ls, Key: key, Until: until, Pause: true})
	}
	return nil
}

// Lower tells the set that its upstream had at most remaining units of key
// left at the instant asOf (from headers such as
// x-ratelimit-remaining-tokens). What key has available is lowered to
// remaining at most — the difference is taken now, as debt if the algorithm
// keeps debt — for every process sharing the set. Lower never raises what is
// available, and a report older than one already applied (asOf before its
// asOf) lowers nothing, and is neither counted nor passed to the Feedback
// hook. Where several limits share key, the one with the
// shortest window is lowered: upstream headers describe the shortest window.
// remaining below 0 — an upstream's count less what is still in flight —
// takes the difference as debt, on every algorithm; remaining is clamped
// to ±MaxCapacity. It fails with ErrUnknownKey for a key the set lacks.
//
// A remaining count describes the upstream when it answered; requests this
// process has sent and not yet seen answered are not in it, so a caller
// should subtract them (httplimit.Transport does).
func (ls *LimitSet) Lower(ctx context.Context, key string, remaining int64, asOf time.Time) error {
	f, spec, err := ls.feedback(key, false)
	if err != nil || f == nil {
		return err
	}
	remaining = min(max(remaining, -MaxCapacity), MaxCapacity) // any sum stays far from overflow
	if err := f.Lower(ctx, spec, remaining, asOf.UnixNano()); err != nil {
		return notApplied(err)
	}
	addCount(&ls.perLimit[spec].feedback, 1)
	if h := ls.hooks; h != nil && h.Feedback != nil {
		callHook(h.Feedback, FeedbackInfo{Set: ls, Key: key, Remaining: remaining})
	}
	return nil
}

// maxPause is the latest instant a pause can last until: far enough to be
// "for ever", early enough that its UnixNano, and sums with it, cannot overflow.
var maxPause = time.Unix(0, math.MaxInt64/2) // 2116

// notApplied returns the error of feedback that was not applied: nil when
// it came too late to change anything (a pause already ended, a stale
// report), which is neither counted nor passed to the Feedback hook.
func notApplied(err error) error {
	if errors.Is(err, backend.ErrFeedbackStale) {
		return nil
	}
	return err
}

// feedback returns the backend's Feedback and the spec of key (-1 for every
// spec when all is allowed and key is ""), or nil for an empty set.
func (ls *LimitSet) feedback(key string, all bool) (backend.Feedback, int, error) {
	if ls.set == nil {
		return nil, 0, nil
	}
	spec := -1
	if key != "" || !all {
		idx, ok := ls.index[key]
		if !ok {
			return nil, 0, fmt.Errorf("%w: %q (the set has %v)", ErrUnknownKey, key, ls.keys)
		}
		spec = idx[0]
	}
	f, ok := ls.set.(backend.Feedback)
	if !ok {
		return nil, 0, ErrFeedbackUnsupported
	}
	return f, spec, nil
}
