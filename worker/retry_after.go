package worker

import (
	"strconv"
	"strings"
	"time"
)

// ParseRetryAfter reads the value of an HTTP Retry-After header, either a
// number of seconds ("120") or an HTTP date in any of the three forms HTTP
// allows (RFC 9110, section 5.6.7): IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
// GMT"), RFC 850 ("Sunday, 06-Nov-94 08:49:37 GMT") or ANSI C asctime ("Sun
// Nov  6 08:49:37 1994"). It returns how long to wait from now, and false
// when v is none of these; a date in the past gives 0, and a number of
// seconds too large for a time.Duration gives the longest one.
func ParseRetryAfter(v string, now time.Time) (time.Duration, bool) {
	v = strings.TrimSpace(v)
	if secs, err := strconv.ParseInt(v, 10, 64); err == nil {
		if secs < 0 {
			return 0, false
		}
		if secs > int64(maxDuration/time.Second) {
			return maxDuration, true
		}
		return time.Duration(secs) * time.Second, true
	}
	t, ok := parseHTTPDate(v, now)
	if !ok {
		return 0, false
	}
	return max(0, t.Sub(now)), true
}

// The three forms of an HTTP date, all in UTC ("GMT" is literal text here).
const (
	imfFixdate = "Mon, 02 Jan 2006 15:04:05 GMT"
	rfc850Date = "Monday, 02-Jan-06 15:04:05 GMT"
	asctime    = "Mon Jan _2 15:04:05 2006"
)

// parseHTTPDate parses an HTTP date. An RFC 850 date's two-digit year is the
// year with those digits from 49 years before now's year to 50 after: one that
// seems more than 50 years ahead is in the past, as RFC 9110 asks.
func parseHTTPDate(v string, now time.Time) (time.Time, bool) {
	if t, err := time.Parse(imfFixdate, v); err == nil {
		return t, true
	}
	if t, err := time.Parse(asctime, v); err == nil {
		return t, true
	}
	t, err := time.Parse(rfc850Date, v)
	if err != nil {
		return time.Time{}, false
	}
	thisYear := now.UTC().Year()
	year := thisYear/100*100 + t.Year()%100
	switch {
	case year > thisYear+50:
		year -= 100
	case year <= thisYear-50:
		year += 100
	}
	return time.Date(year, t.Month(), t.Day(), t.Hour(), t.Minute(), t.Second(), 0, time.UTC), true
}
