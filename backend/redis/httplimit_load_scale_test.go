//go:build !race

package redis_test

import "time"

// The HTTP load test's scale in a normal build: 10,000 identities, each
// sent ten times its rate (10,000 requests per second over the three
// servers) for a window and a half.
const (
	loadIdentities = 10_000
	loadWindow     = 10 * time.Second
	loadRun        = 15 * time.Second
)
