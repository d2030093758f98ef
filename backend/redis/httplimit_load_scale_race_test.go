//go:build race

package redis_test

import "time"

// The HTTP load test's scale under the race detector, which slows every
// process several times: 1,000 identities (2,500 requests per second).
const (
	loadIdentities = 1000
	loadWindow     = 4 * time.Second
	loadRun        = 6 * time.Second
)
