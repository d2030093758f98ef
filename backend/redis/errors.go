package redis

import "errors"

// Errors of this package. The backend also returns the sentinels of package
// backend: ErrLimitMismatch, ErrBackendUnavailable, ErrWouldBlock, ErrClosed
// and ErrClaimed.
var (
	// ErrNameRequired reports an Open without a set name: Redis sets are
	// shared, and found by name (concurry.WithName).
	ErrNameRequired = errors.New("concurry: the redis backend needs a set name")
	// ErrOutOfRange reports a limit whose capacity or window (in µs) is
	// 2^52 or more: the scripts work in exact integers below 2^53.
	ErrOutOfRange = errors.New("concurry: limit outside the exact range of the redis backend")
	// ErrScript reports a reply from Redis the backend does not understand,
	// such as a script error.
	ErrScript = errors.New("concurry: unexpected reply from the redis script")
)
