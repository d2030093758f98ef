package concurry_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

func TestLimitsJSONRoundTrip(t *testing.T) {
	in := concurry.Limits{
		concurry.CallLimit{Window: time.Minute, Capacity: 500, Algorithm: concurry.SlidingWindow},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100_000, Algorithm: concurry.GCRA},
		concurry.RateLimit{Key: "tokens", Window: 24 * time.Hour, Capacity: concurry.MaxCapacity},
		concurry.ResourceLimit{Key: "connections", Capacity: 10},
	}
	b, err := json.Marshal(in)
	if err != nil {
		t.Fatal(err)
	}
	want := `[{"type":"call","window":"1m0s","capacity":500,"algorithm":"SlidingWindow"},` +
		`{"type":"rate","key":"tokens","window":"1m0s","capacity":100000,"algorithm":"GCRA"},` +
		`{"type":"rate","key":"tokens","window":"24h0m0s","capacity":1125899906842624,"algorithm":"TokenBucket"},` +
		`{"type":"resource","key":"connections","capacity":10}]`
	if string(b) != want {
		t.Fatalf("marshal:\n got %s\nwant %s", b, want)
	}
	var out concurry.Limits
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(in, out) {
		t.Fatalf("round trip: got %v, want %v", out, in)
	}
	if _, err := concurry.NewLimitSet(out); err != nil {
		t.Fatalf("NewLimitSet of the decoded limits: %v", err)
	}
}

func TestLimitsJSONReadable(t *testing.T) {
	var ls concurry.Limits
	err := json.Unmarshal([]byte(`[
		{"type": "call", "window": "1m", "capacity": 500},
		{"type": "rate", "key": "tokens", "window": "1h30m", "capacity": 1000, "algorithm": "token_bucket"},
		{"type": "rate", "key": "tokens", "window": 60000000000, "capacity": 100, "algorithm": "gcra"},
		{"type": "resource", "key": "connections", "capacity": 2}
	]`), &ls)
	if err != nil {
		t.Fatal(err)
	}
	want := concurry.Limits{
		concurry.CallLimit{Window: time.Minute, Capacity: 500},
		concurry.RateLimit{Key: "tokens", Window: 90 * time.Minute, Capacity: 1000},
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100, Algorithm: concurry.GCRA},
		concurry.ResourceLimit{Key: "connections", Capacity: 2},
	}
	if !reflect.DeepEqual(ls, want) {
		t.Fatalf("got %v, want %v", ls, want)
	}
}

func TestLimitsJSONErrors(t *testing.T) {
	for _, tc := range []struct{ in, msg string }{
		{`{"type":"call"}`, "must be a JSON array"},
		{`[{"window":"1m","capacity":1}]`, `limit 0: concurry: invalid limit: missing "type"`},
		{`[{"type":"bucket","capacity":1}]`, `unknown limit type "bucket"`},
		{`[{"type":"rate","key":"t","window":"1 minute","capacity":1}]`, `window "1 minute"`},
		{`[{"type":"rate","key":"t","window":1.5,"capacity":1}]`, "neither a duration string nor whole nanoseconds"},
		{`[{"type":"rate","key":"t","window":"1m","capacity":1,"algorithm":"fastest"}]`, `unknown algorithm "fastest"`},
		{`[{"type":"rate","key":"t","window":"1m","capacity":1,"burst":5}]`, `unknown field "burst"`},
		{`[{"type":"call","key":"calls","window":"1m","capacity":1}]`, "a call limit has no key"},
		{`[{"type":"resource","key":"c","window":"1m","capacity":1}]`, "has no window or algorithm"},
		{`[{"type":"rate","key":"t","window":"1m","capacity":"ten"}]`, "cannot unmarshal string"},
	} {
		var ls concurry.Limits
		err := json.Unmarshal([]byte(tc.in), &ls)
		if !errors.Is(err, concurry.ErrInvalidLimit) || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%s: got %v, want ErrInvalidLimit saying %q", tc.in, err, tc.msg)
		}
	}
	var r concurry.RateLimit
	if err := json.Unmarshal([]byte(`{"type":"call","window":"1m","capacity":1}`), &r); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("a call limit read into a RateLimit: got %v", err)
	}
	if err := json.Unmarshal([]byte(`{"key":"t","window":"2s","capacity":3}`), &r); err != nil || r != (concurry.RateLimit{Key: "t", Window: 2 * time.Second, Capacity: 3}) {
		t.Errorf("a RateLimit without type: got %v, %v", r, err)
	}
}

func TestAlgorithmText(t *testing.T) {
	for a := concurry.TokenBucket; a <= concurry.GCRA; a++ {
		b, err := a.MarshalText()
		if err != nil {
			t.Fatal(err)
		}
		var back concurry.Algorithm
		if err := back.UnmarshalText(b); err != nil || back != a {
			t.Errorf("%v: round trip gave %v, %v", a, back, err)
		}
	}
	if _, err := concurry.Algorithm(9).MarshalText(); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("MarshalText of an unknown algorithm: %v", err)
	}
	var a concurry.Algorithm
	if err := a.UnmarshalText([]byte("nope")); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Errorf("UnmarshalText(nope): %v", err)
	}
	// Algorithm works as a map key and in any TextUnmarshaler-based format.
	var m map[concurry.Algorithm]int
	if err := json.Unmarshal([]byte(`{"gcra": 1, "LeakyBucket": 2}`), &m); err != nil || m[concurry.GCRA] != 1 || m[concurry.LeakyBucket] != 2 {
		t.Errorf("map keys: %v, %v", m, err)
	}
}

func FuzzLimitsJSON(f *testing.F) {
	f.Add(`[{"type":"call","window":"1m","capacity":500}]`)
	f.Add(`[{"type":"rate","key":"tokens","window":"1h","capacity":1000,"algorithm":"GCRA"},{"type":"resource","key":"c","capacity":2}]`)
	f.Add(`[{"type":"rate","key":"t","window":60000000000,"capacity":1}]`)
	f.Fuzz(func(t *testing.T, s string) {
		var ls concurry.Limits
		if err := json.Unmarshal([]byte(s), &ls); err != nil {
			return
		}
		b, err := json.Marshal(ls)
		if err != nil {
			t.Fatalf("decoded %q but cannot encode it: %v", s, err)
		}
		var again concurry.Limits
		if err := json.Unmarshal(b, &again); err != nil || !reflect.DeepEqual(ls, again) {
			t.Fatalf("round trip of %s: %v, %v", b, again, err)
		}
	})
}

// Limits read from a configuration file: readable types, windows and
// algorithms.
func ExampleLimits() {
	config := []byte(`{
		"name": "openai-us",
		"limits": [
			{"type": "call", "window": "1m", "capacity": 500},
			{"type": "rate", "key": "tokens", "window": "1m", "capacity": 100000, "algorithm": "GCRA"},
			{"type": "resource", "key": "connections", "capacity": 10}
		]
	}`)
	var cfg struct {
		Name   string          `json:"name"`
		Limits concurry.Limits `json:"limits"`
	}
	if err := json.Unmarshal(config, &cfg); err != nil {
		panic(err)
	}
	set, err := concurry.NewLimitSet(cfg.Limits, concurry.WithName(cfg.Name))
	if err != nil {
		panic(err)
	}
	for _, l := range set.Limits() {
		fmt.Println(l)
	}
	// Output:
	// CallLimit(500 per 1m0s, TokenBucket)
	// RateLimit(tokens: 100000 per 1m0s, GCRA)
	// ResourceLimit(connections: 10)
}
