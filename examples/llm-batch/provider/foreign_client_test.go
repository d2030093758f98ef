package provider

import (
	"context"
	"net/http"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

// foreignQuota allows 60 requests, 6,000 input and 600 output tokens a
// minute: with ForeignShare 0.5 the foreign client calls every 2s, each
// call of 1 request, 100 input and 10 output tokens.
var foreignQuota = Quota{RequestsPerMinute: 60, InputTokensPerMinute: 6000, OutputTokensPerMinute: 600, Concurrency: 5}

// peekHeaders returns the headers of a refused request: the quotas as they
// are, charged nothing.
func peekHeaders(t *testing.T, s *Server) http.Header {
	t.Helper()
	resp, _ := post(t, s.Client(), s.OpenAIBaseURL("r1", "a1")+"chat/completions", map[string]any{})
	require.Equal(t, http.StatusBadRequest, resp.StatusCode)
	return resp.Header
}

func TestForeignClientSpendsItsShareOnSchedule(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := newServer(t, Options{Quota: foreignQuota, ForeignShare: 0.5})
		time.Sleep(time.Second + time.Second/2)
		assert.Zero(t, s.Report()[0].ForeignServed, "the first call is at 2s")
		time.Sleep(time.Second / 2)
		h := peekHeaders(t, s)
		assert.Equal(t, "59", h.Get("X-Ratelimit-Remaining-Requests"), "its first call, at 2s")
		assert.Equal(t, "1s", h.Get("X-Ratelimit-Reset-Requests"))
		assert.Equal(t, "5900", h.Get("X-Ratelimit-Remaining-Tokens"), "100 input tokens: both token quotas have the same share left, and a tie goes to input")

		time.Sleep(58 * time.Second)
		rep := s.Report()[0]
		assert.Equal(t, int64(30), rep.ForeignServed, "one call every 2s for a minute")
		assert.Zero(t, rep.ForeignRejected)
		assert.Zero(t, rep.Served, "the foreign calls are not the provider's own count of calls served")
		assert.Equal(t, "59", peekHeaders(t, s).Get("X-Ratelimit-Remaining-Requests"), "its 30th call, at 60s")

		time.Sleep(time.Hour) // the account skips ahead over 1,800 calls on full buckets
		assert.Equal(t, int64(1830), s.Report()[0].ForeignServed)
		assert.Equal(t, "59", peekHeaders(t, s).Get("X-Ratelimit-Remaining-Requests"))
	})
}

// A client that keeps to the quota by its own count — a concurry LimitSet
// of the same quota — gets no 429 alone, and 429s it cannot prevent when a
// foreign client spends part of the same quota.
func TestForeignClientCausesRefusalsALocalLimiterCannotPrevent(t *testing.T) {
	for _, share := range []float64{0, 0.5} {
		synctest.Test(t, func(t *testing.T) {
			s := newServer(t, Options{Quota: foreignQuota, ForeignShare: share})
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: 60}})
			require.NoError(t, err)
			defer ls.Close()
			c, url := s.Client(), s.OpenAIBaseURL("r1", "a1")+"chat/completions"
			refused := 0
			for range 180 { // a burst of 60, then one a second for two minutes
				acq, err := ls.Acquire(context.Background(), nil)
				require.NoError(t, err)
				resp, _ := post(t, c, url, chat("x", 1))
				if resp.StatusCode == http.StatusTooManyRequests {
					refused++
				}
				require.NoError(t, acq.Release())
			}
			rep := s.Report()[0]
			assert.Equal(t, int64(refused), rep.Rejected)
			assert.LessOrEqual(t, rep.Served+rep.ForeignServed, int64(60+120+1), "never more than the quota allows in 2 minutes")
			if share == 0 {
				assert.Zero(t, refused, "alone, the local limiter keeps to the quota")
				return
			}
			assert.Positive(t, refused, "the foreign client spent what the local limiter counted on")
			assert.Positive(t, rep.ForeignServed)
		})
	}
}

func TestForeignPeriod(t *testing.T) {
	o := Options{Minute: time.Minute, Quota: Quota{RequestsPerMinute: 60}}
	assert.Zero(t, o.foreignPeriod(), "no foreign client")
	o.ForeignShare = 1
	assert.Equal(t, time.Second, o.foreignPeriod())
	o.ForeignShare = 0.25
	assert.Equal(t, 4*time.Second, o.foreignPeriod())
	o.ForeignShare = 1e-20
	assert.Zero(t, o.foreignPeriod(), "rarer than once in 366 days")
}
