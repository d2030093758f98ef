// Package memset is the engine of the in-memory sets: a [Set] holds the
// state of one set of limits, and a [Handle] is one user's view of it that
// implements backend.Set. Package memory wraps it as the default backend, and
// the Unix-socket server of package unixsock hosts its sets with it (through
// package memory), so every algorithm, refund and ordering rule is the same
// in one process and across processes. Users never see it: they call
// memory.New.
//
// Each set is guarded by one mutex, blocked requests wait in a FIFO queue,
// and a single timer per set wakes the head of the queue at the exact
// instant its request fits. Nothing polls. A refusal says why and when: a
// *backend.RefusalError names the limit that blocked and how long until the
// whole request would fit, projected through the requests already waiting.
// Upstream feedback (Handle.Pause, Handle.Lower) acts on the same queue and
// timer.
package memset
