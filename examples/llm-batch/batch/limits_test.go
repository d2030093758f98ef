package batch

import (
	"fmt"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

func TestClientLimitsOfTheDefaultRun(t *testing.T) {
	limits, err := Config{}.ClientLimits()
	require.NoError(t, err)
	assert.Equal(t, []concurry.Limit{
		concurry.CallLimit{Window: 920 * time.Millisecond, Capacity: 23},
		concurry.RateLimit{Key: KeyInputTokens, Window: 950 * time.Millisecond, Capacity: 19_000},
		concurry.RateLimit{Key: KeyOutputTokens, Window: 950 * time.Millisecond, Capacity: 4_750},
		concurry.ResourceLimit{Key: KeyConnections, Capacity: 8},
	}, limits)
}

// Every client limit keeps to the quota's rate, and its burst plus what the
// rate brings in during Delay fits the quota's capacity (twice the burst for
// FixedWindow).
func TestClientLimitsConformToTheQuota(t *testing.T) {
	quotas := []Quota{DefaultQuota, BedrockQuota, {RequestsPerMinute: 7, InputTokensPerMinute: 9_999, OutputTokensPerMinute: 1_001, Concurrency: 1}}
	for _, q := range quotas {
		for _, minute := range []time.Duration{time.Second, time.Minute, 333 * time.Millisecond} {
			for _, alg := range []concurry.Algorithm{concurry.TokenBucket, concurry.GCRA, concurry.SlidingWindow, concurry.LeakyBucket, concurry.FixedWindow} {
				cfg := Config{Quota: q, Minute: minute, Delay: minute / 7, Algorithm: alg, MaxPromptTokens: 100, MaxTokens: 100}
				limits, err := cfg.ClientLimits()
				require.NoError(t, err)
				perMinute := []int64{q.RequestsPerMinute, q.InputTokensPerMinute, q.OutputTokensPerMinute}
				for i, l := range limits[:3] {
					name := fmt.Sprintf("%+v %v %v: %v", q, minute, alg, l)
					capacity, window := rateOf(l)
					assert.Equal(t, alg, algOf(l), name)
					assert.LessOrEqual(t, float64(capacity)/window.Seconds(), float64(perMinute[i])/minute.Seconds()*(1+1e-9), "rate: %s", name)
					burst := float64(capacity)
					if alg == concurry.FixedWindow {
						burst *= 2
					}
					assert.LessOrEqual(t, burst+float64(perMinute[i])*cfg.Margin(), float64(perMinute[i])*(1+1e-9), "burst: %s", name)
					assert.GreaterOrEqual(t, burst, float64(perMinute[i])*(1-cfg.Margin())-2, "no more margin than needed: %s", name)
				}
				assert.Equal(t, concurry.ResourceLimit{Key: KeyConnections, Capacity: q.Concurrency}, limits[3])
			}
		}
	}
}

func rateOf(l concurry.Limit) (int64, time.Duration) {
	if c, ok := l.(concurry.CallLimit); ok {
		return c.Capacity, c.Window
	}
	r := l.(concurry.RateLimit)
	return r.Capacity, r.Window
}

func algOf(l concurry.Limit) concurry.Algorithm {
	if c, ok := l.(concurry.CallLimit); ok {
		return c.Algorithm
	}
	return l.(concurry.RateLimit).Algorithm
}

func TestConfigDefaultsAndParsing(t *testing.T) {
	cfg, err := Config{}.WithDefaults()
	require.NoError(t, err)
	assert.Equal(t, 2000, cfg.Prompts)
	assert.Equal(t, 48, cfg.Workers)
	assert.Equal(t, 50*time.Millisecond, cfg.Delay)
	assert.InDelta(t, 0.05, cfg.Margin(), 1e-12)
	assert.Equal(t, Quota{RequestsPerMinute: 25, InputTokensPerMinute: 20_000, OutputTokensPerMinute: 5_000, Concurrency: 8}, cfg.Quota)

	for s, want := range map[string]concurry.Balancing{"roundrobin": concurry.RoundRobin, "Round-Robin": concurry.RoundRobin, "random": concurry.Random} {
		got, err := ParseBalancing(s)
		require.NoError(t, err)
		assert.Equal(t, want, got)
	}
	_, err = ParseBalancing("leastbusy")
	assert.ErrorIs(t, err, ErrInvalidConfig)
}
