// Package backend defines the contract between a concurry.LimitSet and the
// place where its limit state lives: in this process ([memory]), in a server
// shared by the processes of one host (unixsock), or in Redis (redis).
//
// The root package validates every request before it reaches a backend, so a
// backend sees only well-formed, aligned amount vectors: amounts[i] belongs to
// the i-th [Spec] the set was opened with, and 0 means "not taken".
//
// [memory]: https://pkg.go.dev/github.com/concurry/concurry/backend/memory
package backend
