package unixsock

import (
	"math/rand/v2"
	"runtime"
	"sync"
	"weak"

	"github.com/concurry/concurry/backend"
)

// claimTokens names each backend.Claim an Acquire of this process has used
// with a random token, the same for every request that shares the claim for
// as long as the claim lives, so that a server makes the requests of one
// pool-wide wait share one claim of its own, over all its connections and
// clients. An entry goes when its claim is garbage collected.
var claimTokens = struct {
	mu sync.Mutex
	m  map[weak.Pointer[backend.Claim]]uint64 // guarded by mu
}{m: make(map[weak.Pointer[backend.Claim]]uint64)}

// tokenOf returns the token of c, never 0 (which means no claim).
func tokenOf(c *backend.Claim) uint64 {
	w := weak.Make(c)
	claimTokens.mu.Lock()
	defer claimTokens.mu.Unlock()
	if t, ok := claimTokens.m[w]; ok {
		return t
	}
	t := rand.Uint64() | 1
	claimTokens.m[w] = t
	runtime.AddCleanup(c, forgetClaim, w)
	return t
}

func forgetClaim(w weak.Pointer[backend.Claim]) {
	claimTokens.mu.Lock()
	defer claimTokens.mu.Unlock()
	delete(claimTokens.m, w)
}
