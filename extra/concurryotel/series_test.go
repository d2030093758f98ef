package concurryotel

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

// The cache keeps at most max series; past that it still answers, with a
// series made anew each time.
func TestSeriesCacheIsBounded(t *testing.T) {
	c := newSeriesCache(2)
	a := c.get(seriesKey{set: "a"})
	assert.Same(t, a, c.get(seriesKey{set: "a"}))
	c.get(seriesKey{set: "b"})
	c1, c2 := c.get(seriesKey{set: "c"}), c.get(seriesKey{set: "c"})
	assert.NotSame(t, c1, c2)
	assert.Equal(t, c1, c2)
	assert.Len(t, c.m, 2)
}
