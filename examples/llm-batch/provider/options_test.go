package provider

import (
	"context"
	"math"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestOptionsThatCanNeverRun(t *testing.T) {
	good := Options{Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: sdkQuota}
	for name, change := range map[string]func(*Options){
		"no regions":               func(o *Options) { o.Regions = nil },
		"no accounts":              func(o *Options) { o.Accounts = []string{} },
		"a zero quota":             func(o *Options) { o.Quota.OutputTokensPerMinute = 0 },
		"a quota over 2^50":        func(o *Options) { o.Quota.RequestsPerMinute = MaxQuota + 1 },
		"a negative tokens quota":  func(o *Options) { o.Quota.TokensPerMinute = -1 },
		"a negative minute":        func(o *Options) { o.Minute = -time.Second },
		"a minute over 366 days":   func(o *Options) { o.Minute = 367 * 24 * time.Hour },
		"latencies out of order":   func(o *Options) { o.MinLatency, o.MaxLatency = 2, 1 },
		"a latency over an hour":   func(o *Options) { o.MaxLatency = 2 * time.Hour },
		"negative max output":      func(o *Options) { o.MaxOutputTokens = -1 },
		"huge max output":          func(o *Options) { o.MaxOutputTokens = 1 << 30 },
		"negative max body":        func(o *Options) { o.MaxRequestBytes = -1 },
		"a foreign share over 1":   func(o *Options) { o.ForeignShare = 1.5 },
		"a NaN foreign share":      func(o *Options) { o.ForeignShare = math.NaN() },
		"a region named v1":        func(o *Options) { o.Regions = []string{"v1"} },
		"a region with a slash":    func(o *Options) { o.Regions = []string{"us/east"} },
		"an empty account":         func(o *Options) { o.Accounts = []string{""} },
		"an account named twice":   func(o *Options) { o.Accounts = []string{"a", "a"} },
		"a name over 64 bytes":     func(o *Options) { o.Accounts = []string{strings.Repeat("a", 65)} },
		"an account with a space":  func(o *Options) { o.Accounts = []string{"a b"} },
		"an account of non-ASCII":  func(o *Options) { o.Accounts = []string{"compte-é"} },
		"a region named twice too": func(o *Options) { o.Regions = []string{"eu", "us", "eu"} },
	} {
		o := good
		change(&o)
		_, err := New(o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
		_, err = Start(o)
		assert.ErrorIs(t, err, ErrInvalidOptions, name)
	}
	s, err := New(good)
	require.NoError(t, err)
	require.NoError(t, s.Close(context.Background()))
}

func TestOptionsDefaults(t *testing.T) {
	o, err := Options{Regions: []string{"r1"}, Accounts: []string{"a1"}, Quota: sdkQuota}.withDefaults()
	require.NoError(t, err)
	assert.Equal(t, time.Minute, o.Minute)
	assert.Equal(t, int64(8192), o.MaxOutputTokens)
	assert.Equal(t, int64(4<<20), o.MaxRequestBytes)
	assert.Equal(t, int64(3), o.CountTokens("three words here"[6:]+" x"))
	assert.Zero(t, o.MinLatency+o.MaxLatency)
}

// The same seed and request give the same output and latency.
func TestGenerationIsRepeatable(t *testing.T) {
	o := Options{Seed: 7, MinLatency: time.Millisecond, MaxLatency: time.Second}
	a, b := o.generate([]byte("request"), 100), o.generate([]byte("request"), 100)
	assert.Equal(t, a, b)
	assert.NotEqual(t, a, o.generate([]byte("another request"), 100))
	assert.Equal(t, a.text(), strings.Join(a.chunks(), ""), "the chunks make the text")
	assert.Equal(t, a.out(), CountTokens(a.text()))
	assert.True(t, a.latency >= time.Millisecond && a.latency <= time.Second)
}
