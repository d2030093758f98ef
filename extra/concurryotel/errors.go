package concurryotel

import "errors"

// ErrInvalidOptions reports Options that can never be right: wait buckets
// that are not finite and strictly increasing, or a negative StatsTimeout or
// MaxSeries. New wraps it with the field at fault.
var ErrInvalidOptions = errors.New("concurry: invalid metrics options")
