package concurryprom

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The cache keeps at most max series; past that it still answers, with a
// series made anew each time.
func TestSeriesCacheIsBounded(t *testing.T) {
	c := newSeriesCache[*int](2)
	made := 0
	build := func(seriesKey) *int { made++; n := made; return &n }
	a := c.get(seriesKey{set: "a"}, build)
	assert.Same(t, a, c.get(seriesKey{set: "a"}, build))
	c.get(seriesKey{set: "b"}, build)
	c1, c2 := c.get(seriesKey{set: "c"}, build), c.get(seriesKey{set: "c"}, build)
	assert.NotSame(t, c1, c2)
	assert.Equal(t, 4, made)
	assert.Len(t, c.m, 2)
}
