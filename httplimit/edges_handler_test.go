package httplimit_test

// Edge cases of httplimit.Handler: header rounding and syntax, RemoteIP, Wait, panics.

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"regexp"
	"strconv"
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

// byKey is Handler with Identity the X-Api-Key header, as get sends it.
func byKey(next http.Handler, o httplimit.Options) http.Handler {
	o.Identity = httplimit.Header("X-Api-Key")
	return httplimit.Handler(next, o)
}

// getTimed is get, also returning how long the request took.
func getTimed(h http.Handler, key string) (*httptest.ResponseRecorder, time.Duration) {
	start := time.Now()
	w := get(h, key)
	return w, time.Since(start)
}

// slowHandler returns a handler that holds each request carrying X-Slow
// until release is called.
func slowHandler() (h http.Handler, release func()) {
	ch := make(chan struct{})
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Slow") != "" {
			<-ch
		}
	}), func() { close(ch) }
}

// startSlow sends h a request of key carrying X-Slow in a goroutine of wg,
// and returns once every goroutine of the bubble is blocked (synctest).
func startSlow(wg *sync.WaitGroup, h http.Handler, key string) {
	wg.Go(func() {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Api-Key", key)
		r.Header.Set("X-Slow", "1")
		h.ServeHTTP(httptest.NewRecorder(), r)
	})
	synctest.Wait()
}

// sfInteger matches an RFC 8941 Integer: at most 15 digits.
var sfInteger = regexp.MustCompile(`^-?[0-9]{1,15}$`)

// sfString matches an RFC 8941 String.
var sfString = regexp.MustCompile(`^"([\x20-\x21\x23-\x5b\x5d-\x7e]|\\["\\])*"$`)

// parseList parses an RFC 8941 List of Items whose bare items are strings and
// whose parameters are integers (the two RateLimit fields), strictly; it
// fails the test on anything else. It returns name -> params.
func parseList(t *testing.T, field string) (names []string, params map[string]map[string]string) {
	t.Helper()
	params = map[string]map[string]string{}
	require.NotEmpty(t, field)
	for _, member := range strings.Split(field, ", ") {
		parts := strings.Split(member, ";")
		require.Regexp(t, sfString, parts[0], "item of %q", field)
		p := map[string]string{}
		for _, kv := range parts[1:] {
			k, v, ok := strings.Cut(kv, "=")
			require.True(t, ok, "parameter %q of %q", kv, field)
			require.Regexp(t, `^[a-z*][a-z0-9_.*-]*$`, k)
			require.Regexp(t, sfInteger, v, "parameter %s of %q must be an sf-integer (at most 15 digits)", k, field)
			p[k] = v
		}
		names = append(names, parts[0])
		params[parts[0]] = p
	}
	return names, params
}

// README: "A refused request gets 429 Too Many Requests with Retry-After (the
// refusal's RetryAfter, rounded up: a client that waits exactly that long is
// admitted)". Windows go up to 366 days: take a call at t0, ask again 1s−1ns
// later: RetryAfter is 366d − 1s + 1ns, so Retry-After must be 31622400.
func TestEdgeRetryAfterRoundsUpLongWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		window := 366 * 24 * time.Hour
		k := keyed(t, concurry.CallLimit{Window: window, Capacity: 1})
		var refusal *concurry.RefusalError
		h := byKey(ok, httplimit.Options{Keyed: k,
			Deny: func(w http.ResponseWriter, r *http.Request, err error) {
				require.ErrorAs(t, err, &refusal)
				httplimit.DefaultDeny(w, r, err)
			}})
		require.Equal(t, 200, get(h, "a").Code)
		time.Sleep(time.Second - time.Nanosecond)
		w := get(h, "a")
		require.Equal(t, 429, w.Code)
		require.Equal(t, window-time.Second+time.Nanosecond, refusal.RetryAfter)
		ra, err := strconv.ParseInt(w.Header().Get("Retry-After"), 10, 64)
		require.NoError(t, err)
		assert.GreaterOrEqual(t, time.Duration(ra)*time.Second, refusal.RetryAfter, "Retry-After %d s is shorter than RetryAfter %v", ra, refusal.RetryAfter)
		time.Sleep(time.Duration(ra) * time.Second)
		assert.Equal(t, 200, get(h, "a").Code, "a client that waits exactly Retry-After is admitted")
	})
}

// The same rounding for a sub-second RetryAfter (1ns → 1) and a whole number
// of seconds (exactly 2s → 2, not 3).
func TestEdgeRetryAfterEdges(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.CallLimit{Window: 2 * time.Second, Capacity: 1})
		h := byKey(ok, httplimit.Options{Keyed: k})
		require.Equal(t, 200, get(h, "a").Code)
		w := get(h, "a")
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "2", w.Header().Get("Retry-After"), "exactly 2s")
		assert.Equal(t, `"call_count";r=0;t=2`, w.Header().Get("RateLimit"))
		time.Sleep(2*time.Second - time.Nanosecond)
		w = get(h, "a")
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "1ns rounds up to 1")
		time.Sleep(time.Nanosecond)
		assert.Equal(t, 200, get(h, "a").Code)
	})
}

// draft-ietf-httpapi-ratelimit-headers: RateLimit-Policy is a List of Items
// (sf-string name; q REQUIRED Integer; w Integer) and RateLimit a List of
// Items (sf-string naming an associated quota policy; r REQUIRED Integer; t
// Integer). RFC 8941 Integers have at most 15 digits; capacities go up to
// 2^50 (16 digits).
func TestEdgePolicyFieldsAreValidStructuredFieldsAtMaxCapacity(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t,
			concurry.CallLimit{Window: time.Hour, Capacity: 1},
			concurry.RateLimit{Key: "bytes", Window: time.Hour, Capacity: concurry.MaxCapacity})
		h := byKey(ok, httplimit.Options{Keyed: k, Cost: httplimit.CostHeader("bytes", "X-N", 1)})
		require.Equal(t, 200, get(h, "a").Code)
		w := get(h, "a")
		require.Equal(t, 429, w.Code)
		_, pol := parseList(t, w.Header().Get("RateLimit-Policy"))
		assert.Equal(t, "999999999999999", pol[`"bytes"`]["q"], "2^50 is sent as the largest sf-integer")
		parseList(t, w.Header().Get("RateLimit"))
	})
}

// RateLimit's item "MUST be a String identifying the associated quota
// policy": a refusal by a ResourceLimit (concurrent requests) names a policy,
// which RateLimit-Policy must then list (the draft's qu="concurrent-requests").
func TestEdgeRateLimitNamesAListedPolicy(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t,
			concurry.CallLimit{Window: time.Minute, Capacity: 100},
			concurry.ResourceLimit{Key: "in_flight", Capacity: 1})
		slow, release := slowHandler()
		h := byKey(slow, httplimit.Options{Keyed: k})
		var wg sync.WaitGroup
		startSlow(&wg, h, "a")
		w := get(h, "a")
		release()
		wg.Wait()
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "only a release makes room")
		assert.Equal(t, `"call_count";q=100;w=60`, w.Header().Get("RateLimit-Policy"))
		assert.Empty(t, w.Header().Get("RateLimit"), "a resource is no listed policy: no RateLimit item names it")
	})
}

// A key with a minute and a day window, where the day window refuses: the
// RateLimit item must not claim the minute policy resets in t > its window.
func TestEdgeRateLimitTNotBeyondTheNamedPolicysWindow(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t,
			concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100},
			concurry.RateLimit{Key: "tokens", Window: 24 * time.Hour, Capacity: 150})
		h := byKey(ok, httplimit.Options{Keyed: k, Cost: httplimit.CostHeader("tokens", "X-Tokens", 100)})
		require.Equal(t, 200, get(h, "a").Code)
		time.Sleep(time.Minute) // the minute window is full again; the day has 50 left
		w := get(h, "a")
		require.Equal(t, 429, w.Code)
		_, pol := parseList(t, w.Header().Get("RateLimit-Policy"))
		names, rl := parseList(t, w.Header().Get("RateLimit"))
		require.Equal(t, []string{`"tokens-24h0m0s"`}, names, "the day window refused")
		win, _ := strconv.ParseInt(pol[names[0]]["w"], 10, 64)
		tt, _ := strconv.ParseInt(rl[names[0]]["t"], 10, 64)
		assert.LessOrEqual(t, tt, win, "RateLimit %q: t beyond the named policy's window %d (policies %q)", w.Header().Get("RateLimit"), win, w.Header().Get("RateLimit-Policy"))
	})
}

// Options.LegacyHeaders: "adds X-RateLimit-* to refusals" — only when asked.
func TestEdgeLegacyHeadersOnlyWhenAsked(t *testing.T) {
	k := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: 1})
	h := byKey(ok, httplimit.Options{Keyed: k})
	require.Equal(t, 200, get(h, "a").Code)
	w := get(h, "a")
	require.Equal(t, 429, w.Code)
	for name := range w.Header() {
		assert.False(t, strings.HasPrefix(strings.ToLower(name), "x-ratelimit"), "%s sent without LegacyHeaders", name)
	}
	assert.Empty(t, w.Result().Header.Get("RateLimit-Limit"), "no obsolete RateLimit-Limit field either")
}

// RemoteIP: "Without trusted proxies X-Forwarded-For is ignored, since any
// client can send it"; "when the peer is one of the trusted proxies, the
// X-Forwarded-For list is read from its end and the first address that is not
// a trusted proxy is the client".
func TestEdgeRemoteIPSpoofing(t *testing.T) {
	proxies := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("2001:db8:ffff::/48")}
	for _, tc := range []struct {
		name, remote string
		xff          []string
		want         string
	}{
		{"untrusted peer, spoofed XFF", "203.0.113.5:1", []string{"10.0.0.1"}, "203.0.113.5"},
		{"untrusted peer, spoofed XFF of a client", "203.0.113.5:1", []string{"198.51.100.1"}, "203.0.113.5"},
		{"client prepends a fake hop, proxy appends the real one", "10.0.0.2:1", []string{"198.51.100.1, 203.0.113.5"}, "203.0.113.5"},
		{"client prepends a trusted-looking hop", "10.0.0.2:1", []string{"10.9.9.9, 203.0.113.5"}, "203.0.113.5"},
		{"two XFF lines", "10.0.0.2:1", []string{"198.51.100.1", "203.0.113.5, 10.0.0.3"}, "203.0.113.5"},
		{"mapped peer of a trusted v4 range", "[::ffff:10.0.0.2]:1", []string{"203.0.113.5"}, "203.0.113.5"},
		{"trusted v6 proxy", "[2001:db8:ffff::1]:1", []string{"2001:db8:1:2::7"}, "2001:db8:1:2::/64"},
		{"untrusted v6 peer", "[2001:db8:1:2::7]:1", []string{"203.0.113.5"}, "2001:db8:1:2::/64"},
		{"trusted peer, no XFF: the peer is the client", "10.0.0.2:1", nil, "10.0.0.2"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := httptest.NewRequest(http.MethodGet, "/", nil)
			r.RemoteAddr = tc.remote
			for _, v := range tc.xff {
				r.Header.Add("X-Forwarded-For", v)
			}
			got, err := httplimit.RemoteIP(proxies...)(r)
			require.NoError(t, err)
			assert.Equal(t, tc.want, got)
		})
	}
}

// An untrusted client cannot dodge its limit by varying X-Forwarded-For,
// through the whole handler (default Identity: RemoteIP with no proxies).
func TestEdgeXFFSpoofingDoesNotResetTheBudget(t *testing.T) {
	k := keyed(t, concurry.CallLimit{Window: time.Hour, Capacity: 1})
	h := httplimit.Handler(ok, httplimit.Options{Keyed: k})
	send := func(xff string) int {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.RemoteAddr = "203.0.113.5:4000"
		r.Header.Set("X-Forwarded-For", xff)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w.Code
	}
	require.Equal(t, 200, send("1.1.1.1"))
	assert.Equal(t, 429, send("2.2.2.2"))
	assert.Equal(t, 429, send("3.3.3.3"))
}

// Options.Wait: "a positive Wait blocks the request up to Wait". A request
// whose limits come exactly at the bound is admitted at that instant.
func TestEdgeWaitAdmittedExactlyAtTheBound(t *testing.T) {
	for _, c := range []struct {
		name       string
		window     time.Duration // of the one call, Wait being 1s
		code       int
		waited     time.Duration
		retryAfter string // checked when not empty
	}{
		{"ready exactly at Wait", time.Second, 200, time.Second, ""},
		{"1ns beyond the bound: refused at once", time.Second + time.Nanosecond, 429, 0, "2"},
	} {
		t.Run(c.name, func(t *testing.T) {
			synctest.Test(t, func(t *testing.T) {
				h := byKey(ok, httplimit.Options{Keyed: keyed(t, concurry.CallLimit{Window: c.window, Capacity: 1}), Wait: time.Second})
				require.Equal(t, 200, get(h, "a").Code)
				w, waited := getTimed(h, "a")
				assert.Equal(t, c.code, w.Code)
				assert.Equal(t, c.waited, waited)
				if c.retryAfter != "" {
					assert.Equal(t, c.retryAfter, w.Header().Get("Retry-After"))
				}
			})
		})
	}
}

// Wait bounded on a concurrency limit: a request waiting for a release that
// does not come within Wait is refused after exactly Wait, with 429 and
// Retry-After (README: "A refused request gets 429 Too Many Requests with
// Retry-After").
func TestEdgeWaitOnConcurrencyBoundedWithRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.ResourceLimit{Key: "in_flight", Capacity: 1})
		slow, release := slowHandler()
		var denied error
		h := byKey(slow, httplimit.Options{Keyed: k, Wait: 2 * time.Second,
			Deny: func(w http.ResponseWriter, r *http.Request, err error) {
				denied = err
				httplimit.DefaultDeny(w, r, err)
			}})
		var wg sync.WaitGroup
		startSlow(&wg, h, "a")
		w, waited := getTimed(h, "a")
		assert.Equal(t, 2*time.Second, waited, "waited exactly Wait")
		assert.Equal(t, 429, w.Code)
		assert.Equal(t, "1", w.Header().Get("Retry-After"), "a 429 carries Retry-After; only a release makes room")
		var refusal *concurry.RefusalError
		require.ErrorAs(t, denied, &refusal, "Deny gets the refusal's facts")
		assert.ErrorIs(t, denied, context.DeadlineExceeded)
		assert.Equal(t, time.Duration(0), refusal.RetryAfter)
		// A release within Wait admits the waiting request.
		done := make(chan int, 1)
		go func() { done <- get(h, "a").Code }()
		synctest.Wait()
		time.Sleep(time.Second)
		release()
		wg.Wait()
		assert.Equal(t, 200, <-done)
	})
}

// Handler doc: "releases it when next returns, so resource limits
// (concurrent requests) are held for the whole handler" — also when next
// panics (net/http recovers the panic).
func TestEdgeConcurrencyReleasedWhenHandlerPanics(t *testing.T) {
	k := keyed(t, concurry.ResourceLimit{Key: "in_flight", Capacity: 1},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100})
	boom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("X-Panic") == "abort" {
			panic(http.ErrAbortHandler)
		}
		if r.Header.Get("X-Panic") != "" {
			panic("handler bug")
		}
	})
	h := byKey(boom, httplimit.Options{Keyed: k, Cost: httplimit.CostHeader("tokens", "X-Tokens", 1)})
	for _, p := range []string{"bug", "abort"} {
		r := httptest.NewRequest(http.MethodGet, "/", nil)
		r.Header.Set("X-Api-Key", "a")
		r.Header.Set("X-Panic", p)
		require.Panics(t, func() { h.ServeHTTP(httptest.NewRecorder(), r) })
		st, err := k.Stats(t.Context(), "a")
		require.NoError(t, err)
		l, _ := st.Limit("in_flight")
		assert.Equal(t, int64(0), l.InUse, "released after a panic (%s)", p)
		assert.Equal(t, 200, get(h, "a").Code)
	}
}

// Over a real server: the panic is recovered by net/http, the concurrency
// unit comes back, the next request is admitted.
func TestEdgeConcurrencyReleasedOverRealServer(t *testing.T) {
	k := keyed(t, concurry.ResourceLimit{Key: "in_flight", Capacity: 1})
	boom := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/panic" {
			panic("handler bug")
		}
	})
	srv := httptest.NewUnstartedServer(httplimit.Handler(boom, httplimit.Options{Keyed: k}))
	srv.Config.ErrorLog = nil
	srv.Start()
	defer srv.Close()
	resp, err := http.Get(srv.URL + "/panic")
	if err == nil {
		resp.Body.Close()
	}
	resp, err = http.Get(srv.URL + "/")
	require.NoError(t, err)
	resp.Body.Close()
	assert.Equal(t, 200, resp.StatusCode)
}

// Shared Limiter that is a LimitPool: a refusal still gets Retry-After.
func TestEdgePoolLimiterRetryAfter(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		mk := func() *concurry.LimitSet {
			ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.CallLimit{Window: 3 * time.Second, Capacity: 1}})
			require.NoError(t, err)
			return ls
		}
		pool, err := concurry.NewLimitPool([]*concurry.LimitSet{mk(), mk()})
		require.NoError(t, err)
		h := httplimit.Handler(ok, httplimit.Options{Limiter: pool})
		require.Equal(t, 200, get(h, "").Code)
		require.Equal(t, 200, get(h, "").Code)
		w := get(h, "")
		require.Equal(t, 429, w.Code)
		assert.Equal(t, "3", w.Header().Get("Retry-After"))
	})
}

// A client that goes away while its request waits (Wait mode) gets nothing
// written, and leaves the limits exactly as they were.
func TestEdgeClientGoneWhileWaiting(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		k := keyed(t, concurry.CallLimit{Window: 10 * time.Second, Capacity: 1})
		h := byKey(ok, httplimit.Options{Keyed: k, Wait: time.Minute})
		require.Equal(t, 200, get(h, "a").Code)
		ctx, cancel := context.WithCancel(context.Background())
		r := httptest.NewRequest(http.MethodGet, "/", nil).WithContext(ctx)
		r.Header.Set("X-Api-Key", "a")
		w := httptest.NewRecorder()
		done := make(chan struct{})
		go func() { defer close(done); h.ServeHTTP(w, r) }()
		synctest.Wait()
		time.Sleep(time.Second)
		cancel()
		<-done
		assert.Empty(t, w.Body.String(), "nobody reads an answer")
		assert.Empty(t, w.Header().Get("Retry-After"))
		time.Sleep(9 * time.Second)
		assert.Equal(t, 200, get(h, "a").Code, "the call came back at 10s as if the waiter never was")
	})
}
