package httplimit_test

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"testing"
	"testing/synctest"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

var ok = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })

func keyed(t *testing.T, limits ...concurry.Limit) *concurry.Keyed {
	t.Helper()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: limits, Name: "api"})
	require.NoError(t, err)
	t.Cleanup(func() { _ = k.Close() })
	return k
}

func get(h http.Handler, key string) *httptest.ResponseRecorder {
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	if key != "" {
		r.Header.Set("X-Api-Key", key)
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	return w
}

// A refusal is 429 with Retry-After and the IETF fields; a client that waits
// exactly Retry-After is then admitted.
func TestRefusalHeadersAndRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.CallLimit{Window: 10 * time.Second, Capacity: 2})
		h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key"), LegacyHeaders: true})
		require.Equal(t, 200, get(h, "alice").Code)
		time.Sleep(time.Second)
		require.Equal(t, 200, get(h, "alice").Code)
		w := get(h, "alice")
		require.Equal(t, http.StatusTooManyRequests, w.Code)
		assert.Equal(t, "4", w.Header().Get("Retry-After"), "the first call comes back 5s after it was taken, 4s from now")
		assert.Equal(t, `"call_count";q=2;w=10`, w.Header().Get("RateLimit-Policy"))
		assert.Equal(t, `"call_count";r=0;t=4`, w.Header().Get("RateLimit"))
		assert.Equal(t, "2", w.Header().Get("X-RateLimit-Limit"))
		assert.Equal(t, "0", w.Header().Get("X-RateLimit-Remaining"))
		assert.Equal(t, "4", w.Header().Get("X-RateLimit-Reset"))
		require.Equal(t, 200, get(h, "bob").Code, "bob has a budget of his own")
		time.Sleep(4 * time.Second)
		assert.Equal(t, 200, get(h, "alice").Code, "admitted after exactly Retry-After")
	})
}

func TestRetryAfterRoundsUp(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.CallLimit{Window: 3 * time.Second, Capacity: 2, Algorithm: concurry.GCRA})
		h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key")})
		get(h, "a")
		get(h, "a")
		time.Sleep(200 * time.Millisecond)
		w := get(h, "a")
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "2", w.Header().Get("Retry-After"), "1.3s rounds up to 2")
		time.Sleep(1300*time.Millisecond - 1)
		assert.Equal(t, 429, get(h, "a").Code)
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 200, get(h, "a").Code)
	})
}

func TestConcurrencyHeldUntilHandlerReturns(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.ResourceLimit{Key: "requests", Capacity: 1})
		release := make(chan struct{})
		slow := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { <-release })
		h := httplimit.Handler(slow, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key")})
		var wg sync.WaitGroup
		wg.Go(func() { get(h, "alice") })
		synctest.Wait()
		w := get(h, "alice")
		assert.Equal(t, 429, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "only a release makes room")
		close(release)
		wg.Wait()
		go func() { get(h, "alice") }()
		synctest.Wait() // admitted again: it now blocks in slow
	})
}

func TestWaitMode(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.CallLimit{Window: time.Second, Capacity: 1})
		h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key"), Wait: 2 * time.Second})
		require.Equal(t, 200, get(h, "a").Code)
		start := time.Now()
		require.Equal(t, 200, get(h, "a").Code, "waited for the refill")
		assert.Equal(t, time.Second, time.Since(start))
		long := httplimit.Handler(ok, httplimit.Options{Keyed: keyed(t, concurry.CallLimit{Window: 10 * time.Second, Capacity: 1}), Identity: httplimit.Header("X-Api-Key"), Wait: 2 * time.Second})
		require.Equal(t, 200, get(long, "a").Code)
		start = time.Now()
		w := get(long, "a")
		assert.Equal(t, 429, w.Code, "10s away, beyond the 2s bound")
		assert.Equal(t, time.Duration(0), time.Since(start), "refused at once, not after 2s")
		assert.Equal(t, "10", w.Header().Get("Retry-After"))
	})
}

func TestCostAndUsage(t *testing.T) {
	k := keyed(t, concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100})
	used := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		a := httplimit.FromContext(r.Context())
		require.NotNil(t, a)
		require.NoError(t, a.Update(concurry.Amounts{"tokens": 5}))
	})
	h := httplimit.Handler(used, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key"), Cost: httplimit.CostHeader("tokens", "X-Tokens", 10)})
	r := httptest.NewRequest(http.MethodPost, "/", nil)
	r.Header.Set("X-Api-Key", "a")
	r.Header.Set("X-Tokens", "60")
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	st, err := k.Stats(context.Background(), "a")
	require.NoError(t, err)
	assert.Equal(t, int64(95), st.Limits[0].Available, "60 acquired, 5 used, 55 refunded")

	r.Header.Set("X-Tokens", "ten")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 400, w.Code)
	r.Header.Set("X-Tokens", "101")
	w = httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 413, w.Code, "more than the capacity can never be admitted")
}

// A request of the default cost has no usage to report: next gets it as it
// came, not a copy with a new context. A request whose cost names amounts
// finds its acquisition in its context, and in contexts derived from it.
func TestContextOnlyWhenThereIsUsageToReport(t *testing.T) {
	type key struct{}
	var seen *http.Request
	var got *concurry.Acquisition
	var tokens int64
	next := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		seen = r
		got = httplimit.FromContext(context.WithValue(r.Context(), key{}, "derived"))
		if got != nil {
			tokens = got.Granted("tokens")
		}
		assert.Equal(t, "outer", r.Context().Value(key{}), "the request's own values are kept")
	})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r = r.WithContext(context.WithValue(r.Context(), key{}, "outer"))
	r.Header.Set("X-Api-Key", "a")

	calls := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: 100})
	plain := httplimit.Handler(next, httplimit.Options{Keyed: calls, Identity: httplimit.Header("X-Api-Key")})
	plain.ServeHTTP(httptest.NewRecorder(), r)
	assert.Same(t, r, seen, "the default cost keeps the request")
	assert.Nil(t, got)

	k := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: 100}, concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100})
	costed := httplimit.Handler(next, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key"), Cost: httplimit.CostHeader("tokens", "X-Tokens", 7)})
	costed.ServeHTTP(httptest.NewRecorder(), r)
	assert.NotSame(t, r, seen)
	require.NotNil(t, got)
	assert.Equal(t, int64(7), tokens)
}

// An admitted request of the default cost, for an identity already held,
// allocates only its acquisition handle: no identity string, no request
// copy, no Limiter value.
func TestAdmittedRequestAllocations(t *testing.T) {
	k := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: concurry.MaxCapacity})
	h := httplimit.Handler(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}), httplimit.Options{Keyed: k})
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "192.0.2.1:1234"
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	require.Equal(t, 200, w.Code)
	assert.LessOrEqual(t, testing.AllocsPerRun(1000, func() { h.ServeHTTP(w, r) }), 1.0)
}

func TestIdentityRequiredAndCustomDeny(t *testing.T) {
	k := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: 1})
	var denied error
	h := httplimit.Handler(ok, httplimit.Options{
		Keyed: k, Identity: httplimit.Header("X-Api-Key"),
		Deny: func(w http.ResponseWriter, r *http.Request, err error) {
			denied = err
			w.WriteHeader(http.StatusTeapot)
		},
	})
	assert.Equal(t, 418, get(h, "").Code)
	assert.ErrorIs(t, denied, httplimit.ErrIdentity)
	assert.Equal(t, 200, get(h, "a").Code)
	w := get(h, "a")
	assert.Equal(t, 418, w.Code)
	assert.ErrorIs(t, denied, concurry.ErrWouldBlock)
	assert.NotEmpty(t, w.Header().Get("Retry-After"), "headers are set before Deny")
}

func TestSharedLimiter(t *testing.T) {
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}})
	require.NoError(t, err)
	h := httplimit.Handler(ok, httplimit.Options{Limiter: ls})
	assert.Equal(t, 200, get(h, "a").Code)
	w := get(h, "b")
	assert.Equal(t, 429, w.Code, "one budget for everyone")
	assert.Equal(t, `"call_count";q=1;w=3600`, w.Header().Get("RateLimit-Policy"))
	assert.Panics(t, func() { httplimit.Handler(ok, httplimit.Options{}) })
}

func TestRemoteIP(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8")}
	for _, tc := range []struct {
		remote, xff string
		trusted     bool
		want        string
	}{
		{"192.0.2.1:1234", "", false, "192.0.2.1"},
		{"192.0.2.1:1234", "198.51.100.7", false, "192.0.2.1"},  // XFF from an untrusted peer is ignored
		{"10.0.0.5:1234", "198.51.100.7", true, "198.51.100.7"}, // through our proxy
		{"10.0.0.5:1234", "203.0.113.9, 198.51.100.7, 10.1.1.1", true, "198.51.100.7"},
		{"[2001:db8::1]:443", "", false, "2001:db8::/64"},
		{"[::ffff:192.0.2.1]:80", "", false, "192.0.2.1"},
		{"192.0.2.1", "", false, "192.0.2.1"},                       // no port
		{"[2001:db8:1:2:3::9]:443", "", false, "2001:db8:1:2::/64"}, // one host, one /64
	} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = tc.remote
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		f := httplimit.RemoteIP()
		if tc.trusted {
			f = httplimit.RemoteIP(proxies...)
		}
		got, err := f(r)
		require.NoError(t, err)
		assert.Equal(t, tc.want, got, "%s via %q", tc.remote, tc.xff)
	}
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.RemoteAddr = "10.0.0.5:1"
	r.Header.Set("X-Forwarded-For", "not-an-ip")
	_, err := httplimit.RemoteIP(proxies...)(r)
	assert.Error(t, err)
}

func TestPolicyNamesForSeveralWindows(t *testing.T) {
	k := keyed(t,
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100},
		concurry.RateLimit{Key: "tokens", Window: 24 * time.Hour, Capacity: 1000},
		concurry.ResourceLimit{Key: `con"ns`, Capacity: 1},
	)
	h := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header("X-Api-Key"), Cost: httplimit.CostHeader("tokens", "X-Tokens", 100)})
	require.Equal(t, 200, get(h, "a").Code)
	w := get(h, "a")
	require.Equal(t, 429, w.Code)
	assert.Equal(t, `"tokens-1m0s";q=100;w=60, "tokens-24h0m0s";q=1000;w=86400`, w.Header().Get("RateLimit-Policy"))
	assert.True(t, strings.HasPrefix(w.Header().Get("RateLimit"), `"tokens-1m0s";r=0;t=`), w.Header().Get("RateLimit"))
}

func TestClientGoneIsNotAnswered(t *testing.T) {
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: time.Hour, Capacity: 1}})
	require.NoError(t, err)
	h := httplimit.Handler(ok, httplimit.Options{Limiter: ls, Wait: time.Minute})
	require.Equal(t, 200, get(h, "").Code)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
	w := httptest.NewRecorder()
	h.ServeHTTP(w, r)
	assert.Equal(t, 200, w.Code, "nothing written (the recorder's default)")
	assert.Empty(t, w.Body.String())
	assert.False(t, errors.Is(ctx.Err(), context.DeadlineExceeded))
}
