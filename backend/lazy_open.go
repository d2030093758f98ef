package backend

// LazyOpener is implemented by a shared Backend whose Open reaches its
// server only to check the definitions against the stored ones, a check
// every call of the set makes again. OpenLazy returns the set of the given
// name and specs as Open does, but without that round trip: when the name
// is stored with other definitions, the set's first call fails with an
// error matching ErrLimitMismatch instead of Open. It checks, as Open does
// and without I/O, what CheckName and CheckSpecs check.
//
// concurry.Keyed opens its identities' sets this way: an identity's set is
// made inside its first call anyway, so the mismatch reaches the same
// caller, and an identity seen again after it was forgotten costs no extra
// round trip.
type LazyOpener interface {
	OpenLazy(name string, specs []Spec) (Set, error)
}
