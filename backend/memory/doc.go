// Package memory is the default, in-process backend of concurry: each set is
// guarded by one mutex, blocked requests wait in a FIFO queue, and a single
// timer per set wakes the head of the queue at the exact instant its request
// fits. Nothing polls.
//
// The Unix-socket server of package unixsock hosts its sets with this package,
// so every algorithm, refund and ordering rule is the same across processes.
package memory
