package unixsock

import (
	"sync"
	"time"

	"github.com/concurry/concurry/backend"
)

const (
	// claimKeep is how long a taken claim no request uses any more is kept,
	// so that a request of the same pool-wide wait still on its way (over
	// another connection) finds it taken rather than starting afresh.
	claimKeep = 30 * time.Second
	// maxKeptClaims bounds the taken claims kept; the oldest go first.
	maxKeptClaims = 1 << 16
)

// claimRegistry holds the server's claims by the token clients give them:
// the requests of one pool-wide wait carry one token, whatever connection
// they come over, and share one backend.Claim, so that the sets of one
// server grant at most one of them and the others spend nothing. A
// claimRegistry is safe for concurrent use.
type claimRegistry struct {
	mu   sync.Mutex
	m    map[uint64]*serverClaim // guarded by mu
	kept []keptClaim             // guarded by mu; taken claims nobody uses, oldest first
}

type serverClaim struct {
	claim backend.Claim
	users int // guarded by claimRegistry.mu: requests using it
}

type keptClaim struct {
	token uint64
	c     *serverClaim
	until time.Time
}

func newClaimRegistry() *claimRegistry {
	return &claimRegistry{m: make(map[uint64]*serverClaim)}
}

// get returns the claim of token, nil for token 0 (no claim). Every get of
// a token other than 0 must be matched by a put when the request ends.
func (r *claimRegistry) get(token uint64) *backend.Claim {
	if token == 0 {
		return nil
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	r.sweepLocked(time.Now())
	c := r.m[token]
	if c == nil {
		c = new(serverClaim)
		r.m[token] = c
	}
	c.users++
	return &c.claim
}

// put records that a request using token has ended. A claim nobody uses is
// forgotten, at once when it was not taken, after claimKeep when it was.
func (r *claimRegistry) put(token uint64) {
	if token == 0 {
		return
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	c := r.m[token]
	if c == nil {
		return
	}
	if c.users--; c.users > 0 {
		return
	}
	if !c.claim.Taken() {
		delete(r.m, token)
		return
	}
	now := time.Now()
	r.kept = append(r.kept, keptClaim{token: token, c: c, until: now.Add(claimKeep)})
	r.sweepLocked(now)
}

// sweepLocked forgets the kept claims whose time is up, and the oldest past
// maxKeptClaims. Requires mu held.
func (r *claimRegistry) sweepLocked(now time.Time) {
	for len(r.kept) > 0 && (len(r.kept) > maxKeptClaims || now.After(r.kept[0].until)) {
		k := r.kept[0]
		r.kept[0] = keptClaim{}
		r.kept = r.kept[1:]
		if r.m[k.token] == k.c && k.c.users == 0 {
			delete(r.m, k.token)
		}
	}
	if len(r.kept) == 0 {
		r.kept = nil
	}
}

// logLimiter lets a repeated warning through at most once a second and
// counts the ones it held back. It is safe for concurrent use.
type logLimiter struct {
	mu   sync.Mutex
	last time.Time // guarded by mu
	held int64     // guarded by mu
}

// note records one event at now and reports whether to log it, with the
// number of events not logged since the last one that was.
func (l *logLimiter) note(now time.Time) (held int64, ok bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.last) < time.Second {
		l.held++
		return 0, false
	}
	held, l.held, l.last = l.held, 0, now
	return held, true
}
