// Package memory is the default, in-process backend of concurry: New returns
// a [Backend], and every set it opens lives in this process. Each set is
// guarded by one mutex, blocked requests wait in a FIFO queue, and a single
// timer per set wakes the head of the queue at the exact instant its request
// fits. Nothing polls.
//
// The sets it opens implement backend.Set, backend.Releaser, backend.LeaseFree,
// backend.LeadGranter, backend.Feedback and backend.Idler. A refusal says why
// and when: a *backend.RefusalError names the limit that blocked and how long
// until the whole request would fit, projected through the requests already
// waiting.
// Upstream feedback (backend.Feedback's Pause and Lower) acts on the same
// queue and timer.
//
// The Unix-socket server of package unixsock hosts its sets with this package,
// so every algorithm, refund and ordering rule is the same across processes.
package memory
