package worker_test

import (
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry/worker"
)

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	const maxDuration = time.Duration(1<<63 - 1)
	for _, c := range []struct {
		v    string
		want time.Duration
		ok   bool
	}{
		{"120", 2 * time.Minute, true},
		{" 0 ", 0, true},
		{"99999999999999999", maxDuration, true},
		{"Sat, 01 Mar 2025 12:00:30 GMT", 30 * time.Second, true}, // IMF-fixdate
		{"Sat, 01 Mar 2025 11:00:00 GMT", 0, true},                // in the past
		{"Saturday, 01-Mar-25 12:01:00 GMT", time.Minute, true},   // RFC 850
		{"Thursday, 01-Mar-70 12:00:00 GMT", time.Date(2070, 3, 1, 12, 0, 0, 0, time.UTC).Sub(now), true}, // 45 years ahead: 2070
		{"Sunday, 01-Mar-76 12:00:00 GMT", 0, true},                                                       // 51 years ahead: 1976
		{"Sat Mar  1 12:00:05 2025", 5 * time.Second, true},                                               // ANSI C asctime
		{"Sat Mar 15 12:00:00 2025", 14 * 24 * time.Hour, true},                                           // asctime, two-digit day
		{"  Sat, 01 Mar 2025 12:00:30 GMT\t", 30 * time.Second, true},
		{"-5", 0, false},
		{"1.5", 0, false},
		{"", 0, false},
		{"soon", 0, false},
		{"Sat, 01 Mar 2025 12:00:30 PST", 0, false}, // HTTP dates are in GMT
		{"Sat, 32 Mar 2025 12:00:30 GMT", 0, false},
		{"2025-03-01T12:00:30Z", 0, false},
		{"Sat, 01 Mar 2025 12:00:30", 0, false},
	} {
		got, ok := worker.ParseRetryAfter(c.v, now)
		if got != c.want || ok != c.ok {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v, %v", c.v, got, ok, c.want, c.ok)
		}
	}
}

// An RFC 850 date's two-digit year is never more than 50 years ahead.
func TestRFC850TwoDigitYears(t *testing.T) {
	now := time.Date(2090, 1, 1, 0, 0, 0, 0, time.UTC)
	for _, c := range []struct {
		v    string
		want time.Time
	}{
		{"Sunday, 01-Jan-40 00:00:00 GMT", time.Date(2140, 1, 1, 0, 0, 0, 0, time.UTC)}, // 50 years ahead
		{"Monday, 01-Jan-91 00:00:00 GMT", time.Date(2091, 1, 1, 0, 0, 0, 0, time.UTC)}, // not 1991
		{"Monday, 01-Jan-41 00:00:00 GMT", time.Date(2041, 1, 1, 0, 0, 0, 0, time.UTC)}, // 2141 is too far ahead: the past
	} {
		got, ok := worker.ParseRetryAfter(c.v, now)
		if want := max(0, c.want.Sub(now)); !ok || got != want {
			t.Errorf("ParseRetryAfter(%q) = %v, %v; want %v", c.v, got, ok, want)
		}
	}
}

func FuzzParseRetryAfter(f *testing.F) {
	for _, seed := range []string{"120", "0", "Sun, 06 Nov 1994 08:49:37 GMT", "Sunday, 06-Nov-94 08:49:37 GMT", "Sun Nov  6 08:49:37 1994", "soon", ""} {
		f.Add(seed)
	}
	now := time.Date(2025, 3, 1, 12, 0, 0, 0, time.UTC)
	f.Fuzz(func(t *testing.T, v string) {
		d, ok := worker.ParseRetryAfter(v, now)
		if d < 0 || (!ok && d != 0) {
			t.Fatalf("ParseRetryAfter(%q) = %v, %v", v, d, ok)
		}
	})
}

// The worker package parses HTTP dates itself, so a program that uses it
// does not link net/http.
func TestWorkerDoesNotDependOnNetHTTP(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		t.Skip("no go command")
	}
	out, err := exec.Command(goTool, "list", "-deps", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, dep := range strings.Fields(string(out)) {
		if dep == "net/http" || dep == "net" {
			t.Fatalf("worker depends on %s", dep)
		}
	}
}
