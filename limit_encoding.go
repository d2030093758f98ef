package concurry

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"strconv"
	"time"
)

// Limits is a list of limits that can be read from and written to JSON, so
// that a LimitSet can be defined in a configuration file:
//
//	[
//	  {"type": "call", "window": "1m", "capacity": 500},
//	  {"type": "rate", "key": "tokens", "window": "1m", "capacity": 100000, "algorithm": "GCRA"},
//	  {"type": "resource", "key": "connections", "capacity": 10}
//	]
//
// Each element names its type ("rate", "call" or "resource"); windows are Go
// duration strings ("1m", "1h30m", "500ms"; a bare number is read as
// nanoseconds); algorithms are names as [ParseAlgorithm] reads them, and
// TokenBucket when absent. Unknown fields and malformed values are errors
// matching ErrInvalidLimit that name the element. Ranges (capacity, window)
// are checked by NewLimitSet. A Limits is a []Limit: pass it to NewLimitSet
// as it is.
type Limits []Limit

// MarshalText returns the algorithm's name, such as "GCRA".
func (a Algorithm) MarshalText() ([]byte, error) {
	if a > GCRA {
		return nil, fmt.Errorf("%w: unknown algorithm %d", ErrInvalidLimit, uint8(a))
	}
	return []byte(a.String()), nil
}

// UnmarshalText sets a to the algorithm named by text, as [ParseAlgorithm]
// reads it.
func (a *Algorithm) UnmarshalText(text []byte) error {
	v, err := ParseAlgorithm(string(text))
	if err != nil {
		return err
	}
	*a = v
	return nil
}

// MarshalText returns "rate", "call" or "resource".
func (k LimitKind) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText sets k to the kind named "rate", "call" or "resource".
func (k *LimitKind) UnmarshalText(text []byte) error {
	for _, v := range []LimitKind{KindRate, KindCall, KindResource} {
		if v.String() == string(text) {
			*k = v
			return nil
		}
	}
	return fmt.Errorf("%w: unknown limit type %q (want rate, call or resource)", ErrInvalidLimit, text)
}

// limitJSON is the JSON form of every limit type.
type limitJSON struct {
	Type      LimitKind  `json:"type"`
	Key       string     `json:"key,omitempty"`
	Window    jsonWindow `json:"window,omitempty"`
	Capacity  int64      `json:"capacity"`
	Algorithm *Algorithm `json:"algorithm,omitempty"`
}

// jsonWindow is a duration written as a Go duration string.
type jsonWindow time.Duration

func (w jsonWindow) MarshalText() ([]byte, error) { return []byte(time.Duration(w).String()), nil }

func (w *jsonWindow) UnmarshalJSON(b []byte) error {
	if len(b) > 0 && b[0] != '"' {
		n, err := strconv.ParseInt(string(b), 10, 64)
		if err != nil {
			return fmt.Errorf("%w: window %s is neither a duration string nor whole nanoseconds", ErrInvalidLimit, b)
		}
		*w = jsonWindow(n)
		return nil
	}
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return fmt.Errorf("%w: window %q: %v", ErrInvalidLimit, s, err)
	}
	*w = jsonWindow(d)
	return nil
}

// MarshalJSON writes the limit as {"type": "rate", "key", "window", "capacity", "algorithm"}.
func (l RateLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitJSON{Type: KindRate, Key: l.Key, Window: jsonWindow(l.Window), Capacity: l.Capacity, Algorithm: &l.Algorithm})
}

// MarshalJSON writes the limit as {"type": "call", "window", "capacity", "algorithm"}.
func (l CallLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitJSON{Type: KindCall, Window: jsonWindow(l.Window), Capacity: l.Capacity, Algorithm: &l.Algorithm})
}

// MarshalJSON writes the limit as {"type": "resource", "key", "capacity"}.
func (l ResourceLimit) MarshalJSON() ([]byte, error) {
	return json.Marshal(limitJSON{Type: KindResource, Key: l.Key, Capacity: l.Capacity})
}

// UnmarshalJSON reads the form MarshalJSON writes; "type" may be omitted.
func (l *RateLimit) UnmarshalJSON(b []byte) error {
	v, err := decodeLimit(b, KindRate)
	if err == nil {
		*l = v.(RateLimit)
	}
	return err
}

// UnmarshalJSON reads the form MarshalJSON writes; "type" may be omitted.
func (l *CallLimit) UnmarshalJSON(b []byte) error {
	v, err := decodeLimit(b, KindCall)
	if err == nil {
		*l = v.(CallLimit)
	}
	return err
}

// UnmarshalJSON reads the form MarshalJSON writes; "type" may be omitted.
func (l *ResourceLimit) UnmarshalJSON(b []byte) error {
	v, err := decodeLimit(b, KindResource)
	if err == nil {
		*l = v.(ResourceLimit)
	}
	return err
}

// UnmarshalJSON reads an array of limits, each with its "type".
func (ls *Limits) UnmarshalJSON(b []byte) error {
	var raw []json.RawMessage
	if err := json.Unmarshal(b, &raw); err != nil {
		return fmt.Errorf("%w: limits must be a JSON array: %v", ErrInvalidLimit, err)
	}
	out := make(Limits, 0, len(raw))
	for i, r := range raw {
		l, err := decodeLimit(r, 255)
		if err != nil {
			return fmt.Errorf("limit %d: %w", i, err)
		}
		out = append(out, l)
	}
	*ls = out
	return nil
}

// decodeLimit reads one limit. want is the type the caller expects, or 255
// when the JSON must say it.
func decodeLimit(b []byte, want LimitKind) (Limit, error) {
	var j limitJSON
	j.Type = 255
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&j); err != nil {
		return nil, wrapInvalid(err)
	}
	switch {
	case j.Type == 255 && want == 255:
		return nil, fmt.Errorf("%w: missing \"type\" (rate, call or resource)", ErrInvalidLimit)
	case j.Type == 255:
		j.Type = want
	case want != 255 && j.Type != want:
		return nil, fmt.Errorf("%w: type %q where %q was expected", ErrInvalidLimit, j.Type, want)
	}
	var alg Algorithm
	if j.Algorithm != nil {
		alg = *j.Algorithm
	}
	switch j.Type {
	case KindCall:
		if j.Key != "" && j.Key != CallKey {
			return nil, fmt.Errorf("%w: a call limit has no key (its key is %q)", ErrInvalidLimit, CallKey)
		}
		return CallLimit{Window: time.Duration(j.Window), Capacity: j.Capacity, Algorithm: alg}, nil
	case KindResource:
		if j.Window != 0 || j.Algorithm != nil {
			return nil, fmt.Errorf("%w: resource limit %q has no window or algorithm", ErrInvalidLimit, j.Key)
		}
		return ResourceLimit{Key: j.Key, Capacity: j.Capacity}, nil
	}
	return RateLimit{Key: j.Key, Window: time.Duration(j.Window), Capacity: j.Capacity, Algorithm: alg}, nil
}

// wrapInvalid makes a JSON decoding error match ErrInvalidLimit, unless it
// already does.
func wrapInvalid(err error) error {
	if errors.Is(err, ErrInvalidLimit) {
		return err
	}
	return fmt.Errorf("%w: %v", ErrInvalidLimit, err)
}
