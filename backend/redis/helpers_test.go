package redis_test

import (
	"context"
	"testing"

	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
)

// open opens a set of specs in b under the test's name, closed when the
// test ends.
func open(t *testing.T, b *cr.Backend, specs ...backend.Spec) backend.Set {
	t.Helper()
	set, err := b.Open(context.Background(), t.Name(), specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

// available returns the Available of every spec of set.
func available(t *testing.T, set backend.Set) []int64 {
	t.Helper()
	st, err := set.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(st))
	for i, s := range st {
		out[i] = s.Available
	}
	return out
}
