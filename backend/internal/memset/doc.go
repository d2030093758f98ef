// Package memset is the engine of the in-memory sets: a [Set] holds the
// state of one set of limits, and a [Handle] is one user's view of it that
// implements backend.Set. Package memory wraps it as the default backend, and
// the Unix-socket server of package unixsock hosts its sets with it (through
// package memory), so every algorithm, refund and ordering rule is the same
// in one process and across processes. Users never see it: they call
// memory.New.
//
// Each set is guarded by one mutex (a set of one resource limit grants and
// returns units without it while nobody waits: see solo.go), blocked
// requests wait in a FIFO queue,
// and a single timer per set wakes the head of the queue at the exact
// instant its request fits. Nothing polls. A refusal says why and when: a
// *backend.RefusalError names the limit that blocked and how long until the
// whole request would fit, projected through the requests already waiting.
// Upstream feedback (Handle.Pause, Handle.Lower) acts on the same queue and
// timer.
//
// A set is small, because a concurry.Keyed keeps one per active identity:
// it shares its specs with the caller, keeps the state of every limit in one
// block of int64 words (the packed form of package algorithms, and a held
// count per resource), and makes what only waiting or feedback needs when a
// request first waits or feedback first comes. A set of a call rate, a token
// rate and a connection count, handle included, keeps 142 bytes
// (TestBytesPerSet).
package memset
