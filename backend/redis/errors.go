package redis

import (
	"errors"

	"github.com/concurry/concurry/backend"
)

// Errors of this package. The backend also returns the sentinels of package
// backend: ErrLimitMismatch, ErrBackendUnavailable, ErrWouldBlock, ErrClosed,
// ErrClaimed, ErrInvalidLimit, ErrNameRequired and ErrLeaseLost.
var (
	// ErrNameRequired is backend.ErrNameRequired, kept under its old name:
	// Redis sets are shared, and found by name (concurry.WithName).
	//
	// Deprecated: match backend.ErrNameRequired (or concurry.ErrNameRequired).
	ErrNameRequired = backend.ErrNameRequired
	// ErrOutOfRange is backend.ErrInvalidLimit, kept under its old name: the
	// backend accepts exactly the range of the contract (capacities up to
	// 2^50, windows up to 366 days), the same as every backend.
	//
	// Deprecated: match backend.ErrInvalidLimit (or concurry.ErrInvalidLimit).
	ErrOutOfRange = backend.ErrInvalidLimit
	// ErrScript reports a reply from Redis the backend does not understand,
	// such as a script error.
	ErrScript = errors.New("concurry: unexpected reply from the redis script")
)
