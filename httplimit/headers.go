package httplimit

import (
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/concurry/concurry"
)

// setRefusalHeaders writes Retry-After, RateLimit-Policy, RateLimit and,
// when legacy is set, X-RateLimit-{Limit,Remaining,Reset}.
//
// Retry-After is RetryAfter rounded up to whole seconds, so a client that
// waits exactly that long finds the request fits (if nothing else took the
// room first); a refusal only a release can end (RetryAfter 0) says 1.
//
// RateLimit-Policy lists every rate and call limit of the set as
// "name";q=capacity;w=window-seconds, where name is the limit's key, with
// "-" and its window appended when several limits share the key. q is at
// most 999999999999999, the largest Integer a structured field (RFC 8941)
// can carry: a larger capacity (they go up to 2^50) is sent as that.
//
// RateLimit names the policy that refused with r=0 and t=the Retry-After
// seconds. Of several windows of the refusing key it names the shortest
// window at least as long as the wait (a window refills within its length),
// else the longest. A ResourceLimit (concurrent requests) is no policy of the
// draft's: a refusal by one gets Retry-After and no RateLimit item, since
// that item must name a policy RateLimit-Policy lists.
func setRefusalHeaders(h http.Header, limits []concurry.Limit, refusal *concurry.RefusalError, legacy bool) {
	retry := retrySeconds(refusal.RetryAfter)
	h.Set("Retry-After", strconv.FormatInt(retry, 10))
	var policies []string
	blocking, capacity, bwin := "", int64(0), time.Duration(0)
	for _, l := range limits {
		key, window, c := describe(l)
		if window == 0 {
			if key == refusal.Key && capacity == 0 {
				capacity = c // for the legacy fields only: no policy to name
			}
			continue
		}
		name := key
		if shared(limits, key) {
			name = key + "-" + window.String()
		}
		p := fmt.Sprintf("%s;q=%d;w=%d", sfString(name), sfInteger(c), retrySeconds(window))
		policies = append(policies, p)
		if key == refusal.Key && (blocking == "" || explains(window, bwin, refusal.RetryAfter)) {
			blocking, capacity, bwin = sfString(name), c, window
		}
	}
	if len(policies) > 0 {
		h.Set("RateLimit-Policy", strings.Join(policies, ", "))
	}
	if blocking != "" {
		h.Set("RateLimit", fmt.Sprintf("%s;r=0;t=%d", blocking, retry))
	}
	if legacy && capacity > 0 {
		h.Set("X-RateLimit-Limit", strconv.FormatInt(capacity, 10))
		h.Set("X-RateLimit-Remaining", "0")
		h.Set("X-RateLimit-Reset", strconv.FormatInt(retry, 10))
	}
}

// retrySeconds rounds d up to whole seconds, at least 1. It counts in
// integers: a float64 of seconds loses the nanoseconds of waits past ~97
// days, and would round those down.
func retrySeconds(d time.Duration) int64 {
	if d <= 0 {
		return 1
	}
	s := int64(d / time.Second)
	if d%time.Second != 0 {
		s++
	}
	return s
}

// explains reports whether a window w explains a wait d better than a
// window b does: the shortest window at least d, else the longest.
func explains(w, b, d time.Duration) bool {
	if (w >= d) != (b >= d) {
		return w >= d
	}
	if w >= d {
		return w < b
	}
	return w > b
}

// maxSFInteger is the largest Integer of a structured field (15 digits).
const maxSFInteger = 999_999_999_999_999

// sfInteger clamps n to what a structured-field Integer can carry.
func sfInteger(n int64) int64 { return min(n, maxSFInteger) }

// describe returns a limit's key, window (0 for a resource) and capacity.
func describe(l concurry.Limit) (string, time.Duration, int64) {
	switch l := l.(type) {
	case concurry.RateLimit:
		return l.Key, l.Window, l.Capacity
	case concurry.CallLimit:
		return concurry.CallKey, l.Window, l.Capacity
	case concurry.ResourceLimit:
		return l.Key, 0, l.Capacity
	}
	return "", 0, 0
}

// shared reports whether several limits have key.
func shared(limits []concurry.Limit, key string) bool {
	n := 0
	for _, l := range limits {
		if k, _, _ := describe(l); k == key {
			n++
		}
	}
	return n > 1
}

// sfString quotes s as a structured-field string (RFC 8941): printable
// ASCII only, with '"' and '\' escaped; other bytes become '?'.
func sfString(s string) string {
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"' || c == '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case c < 0x20 || c > 0x7e:
			b.WriteByte('?')
		default:
			b.WriteByte(c)
		}
	}
	b.WriteByte('"')
	return b.String()
}
