package concurryotel

import (
	"errors"

	"github.com/concurry/concurry/internal/observe"
)

var (
	// ErrInvalidOptions reports Options that can never be right: wait
	// buckets that are not finite and strictly increasing, or a negative
	// StatsTimeout or MaxSeries. New wraps it with the field at fault.
	ErrInvalidOptions = errors.New("concurry: invalid metrics options")
	// ErrDuplicateName reports a set registered (itself or in a pool) under
	// the name of another registered set: their series could not be told
	// apart. Name the sets with concurry.WithName.
	ErrDuplicateName = observe.ErrDuplicateName
)
