package observe

import "errors"

// ErrDuplicateName reports a set registered (itself or in a pool) under the
// name of another registered set: their series could not be told apart. The
// metrics modules re-export it.
var ErrDuplicateName = errors.New("concurry: another registered set has the same name")
