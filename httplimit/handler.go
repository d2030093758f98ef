package httplimit

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/concurry/concurry"
)

// Options configure Handler. Exactly one of Keyed and Limiter must be set;
// every other field may be left zero for its default.
type Options struct {
	// Keyed gives every identity its own limits.
	Keyed *concurry.Keyed
	// Limiter is one LimitSet or LimitPool shared by every request, when
	// the limits are not per identity. Identity is then not called.
	Limiter concurry.Limiter
	// Identity returns the identity a request is limited as. Default:
	// [RemoteIP] with no trusted proxies. An error answers 400 Bad Request
	// (or what Deny writes) and admits nothing.
	Identity func(*http.Request) (string, error)
	// Cost returns the amounts a request acquires. Default: nil, which takes
	// one unit of every CallLimit and ResourceLimit (a set with a RateLimit
	// needs a Cost that names it). An error answers 400. A request whose
	// cost names amounts can report their real usage through [FromContext].
	Cost func(*http.Request) (concurry.Amounts, error)
	// Wait is how long a request may wait for its limits before it is
	// refused. Zero (the default) refuses at once when the limits are not
	// available; a positive Wait blocks the request up to Wait (and no longer
	// than its own context allows), and refuses it at once when the limits
	// could not be granted within Wait. A request whose Wait runs out while
	// it waits (for a release of a ResourceLimit, say) is refused as one
	// only a release can end: a *concurry.RefusalError with RetryAfter 0,
	// answered with Retry-After: 1.
	Wait time.Duration
	// Deny writes the response to a request that is not admitted. err says
	// why: a *concurry.RefusalError (matching concurry.ErrWouldBlock or
	// context.DeadlineExceeded) when the limits refused it, an error from
	// Identity or Cost, concurry.ErrExceedsCapacity, or a backend error such as
	// concurry.ErrBackendUnavailable. Headers the package sets (Retry-After,
	// RateLimit-Policy, RateLimit) are already on w. Default: [DefaultDeny].
	// A panic in Deny propagates as a panic of the handler would (net/http
	// recovers it and logs it).
	Deny func(w http.ResponseWriter, r *http.Request, err error)
	// LegacyHeaders adds X-RateLimit-Limit, X-RateLimit-Remaining and
	// X-RateLimit-Reset to refusals, beside the IETF fields.
	LegacyHeaders bool
}

// Handler returns next limited by opts. Each request acquires its cost
// before next runs and releases it when next returns, so resource limits
// (concurrent requests) are held for the whole handler. Usage of rate limits
// that next does not report (see [FromContext]) counts as acquired. A
// request whose cost names no amounts (the default Cost) holds one call and
// one unit of each resource, whose usage is fixed: nothing is left to
// report, so next gets the request as it came, without the copy a new
// context would take.
// Handler panics when opts sets neither or both of Keyed and Limiter, a
// programmer error.
func Handler(next http.Handler, opts Options) http.Handler {
	if (opts.Keyed == nil) == (opts.Limiter == nil) {
		panic("httplimit: Options must set exactly one of Keyed and Limiter")
	}
	if opts.Identity == nil {
		opts.Identity = RemoteIP()
	}
	if opts.Deny == nil {
		opts.Deny = DefaultDeny
	}
	return &handler{next: next, opts: opts}
}

// Middleware returns Handler as a middleware, the form routers such as chi
// take: r.Use(httplimit.Middleware(opts)).
func Middleware(opts Options) func(http.Handler) http.Handler {
	return func(next http.Handler) http.Handler { return Handler(next, opts) }
}

type handler struct {
	next http.Handler
	opts Options
}

func (h *handler) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	identity := ""
	if h.opts.Keyed != nil {
		id, err := h.opts.Identity(r)
		if err != nil {
			h.opts.Deny(w, r, fmt.Errorf("%w: %w", ErrIdentity, err))
			return
		}
		identity = id
	}
	var req concurry.Amounts
	if h.opts.Cost != nil {
		var err error
		if req, err = h.opts.Cost(r); err != nil {
			h.opts.Deny(w, r, fmt.Errorf("%w: %w", ErrCost, err))
			return
		}
	}
	a, err := h.acquire(r.Context(), identity, req)
	if err != nil {
		h.refuse(w, r, identity, err)
		return
	}
	defer func() { _ = a.Release() }() // unreported usage counts as acquired
	if len(req) > 0 {
		r = r.WithContext(&acquisitionContext{r.Context(), a})
	}
	h.next.ServeHTTP(w, r)
}

func (h *handler) acquire(ctx context.Context, identity string, req concurry.Amounts) (*concurry.Acquisition, error) {
	k, lim := h.opts.Keyed, h.opts.Limiter
	if h.opts.Wait <= 0 {
		if k != nil {
			return k.TryAcquire(ctx, identity, req)
		}
		return lim.TryAcquire(ctx, req)
	}
	wctx, cancel := context.WithTimeout(ctx, h.opts.Wait)
	defer cancel()
	var a *concurry.Acquisition
	var err error
	if k != nil {
		a, err = k.Acquire(wctx, identity, req)
	} else {
		a, err = lim.Acquire(wctx, req)
	}
	var refusal *concurry.RefusalError
	if err != nil && wctx.Err() != nil && ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded) && !errors.As(err, &refusal) {
		// Wait ran out in the queue (for a release, say): a refusal whose
		// end nobody knows, told as one only a release can end.
		return nil, &concurry.RefusalError{Deadline: true}
	}
	return a, err
}

// refuse sets the refusal's headers and calls Deny.
func (h *handler) refuse(w http.ResponseWriter, r *http.Request, identity string, err error) {
	var refusal *concurry.RefusalError
	if errors.As(err, &refusal) {
		var limits []concurry.Limit
		if h.opts.Keyed != nil {
			limits, _ = h.opts.Keyed.Limits(identity)
		} else if ls, ok := h.opts.Limiter.(*concurry.LimitSet); ok {
			limits = ls.Limits()
		}
		setRefusalHeaders(w.Header(), limits, refusal, h.opts.LegacyHeaders)
	}
	h.opts.Deny(w, r, err)
}

// DefaultDeny answers a refused request: 429 Too Many Requests for a
// refusal of the limits, 413 Content Too Large for a request larger than a
// limit's capacity (it could never be admitted), 400 Bad Request when the
// identity or cost could not be read, 499-free silence when the client went
// away (its context ended), and 503 Service Unavailable otherwise (a shared
// backend that cannot be reached).
func DefaultDeny(w http.ResponseWriter, r *http.Request, err error) {
	switch {
	case errors.Is(err, concurry.ErrWouldBlock), errors.Is(err, context.DeadlineExceeded) && r.Context().Err() == nil:
		http.Error(w, "too many requests", http.StatusTooManyRequests)
	case errors.Is(err, concurry.ErrExceedsCapacity):
		http.Error(w, "request exceeds the limit's capacity", http.StatusRequestEntityTooLarge)
	case errors.Is(err, ErrIdentity), errors.Is(err, ErrCost), errors.Is(err, concurry.ErrInvalidRequest), errors.Is(err, concurry.ErrUnknownKey):
		http.Error(w, err.Error(), http.StatusBadRequest)
	case r.Context().Err() != nil:
		// The client is gone: nobody reads an answer.
	default:
		http.Error(w, "rate limiter unavailable", http.StatusServiceUnavailable)
	}
}

// Errors of Options.Identity and Options.Cost reach Deny wrapped in these.
var (
	ErrIdentity = errors.New("httplimit: cannot identify the request")
	ErrCost     = errors.New("httplimit: cannot read the request's cost")
)

type acquisitionKey struct{}

// acquisitionContext is a request's context carrying its acquisition: one
// allocation where context.WithValue would box the key and the value too.
type acquisitionContext struct {
	context.Context
	a *concurry.Acquisition
}

func (c *acquisitionContext) Value(key any) any {
	if key == (acquisitionKey{}) {
		return c.a
	}
	return c.Context.Value(key)
}

// FromContext returns the acquisition Handler holds for the request whose
// context ctx is (or is derived from), so that the handler can report real
// usage with Update (tokens counted after the work, say). It is nil outside
// a limited handler, and for a request whose cost named no amounts (the
// default Cost), which has no usage to report.
func FromContext(ctx context.Context) *concurry.Acquisition {
	a, _ := ctx.Value(acquisitionKey{}).(*concurry.Acquisition)
	return a
}
