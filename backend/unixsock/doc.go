// Package unixsock shares limit sets between the processes of one machine
// through a server on a Unix socket: the Go counterpart of the guide's
// mode="process". The server keeps every set in memory with package memory,
// so every algorithm, refund and first-come-first-served rule is the same as
// within one process. A program only names its set and passes a [Client]:
//
//	client, err := unixsock.Dial("/run/myapp/limits.sock", unixsock.Options{})
//	if err != nil { ... }
//	defer client.Close()
//	set, err := concurry.NewLimitSet(limits,
//		concurry.WithName("bedrock/us-east-1"), concurry.WithBackend(client))
//
// The first client to use a name defines the set; a later definition that
// differs fails with concurry.ErrLimitMismatch.
//
// # Starting the server
//
// There are three ways; all of them take the lock file PATH.lock, so two
// servers never serve one path.
//
//  1. A standalone daemon: concurryd -socket PATH. It shuts down gracefully on
//     SIGTERM or SIGINT and logs with log/slog. The state lives as long as the
//     daemon, whatever the workers do; give its clients
//     Options.DisableAutoHost so that they wait for the daemon to come back
//     rather than take over while it restarts.
//  2. Embedded: [Serve](ctx, path, opts) (or [Listen]) in a parent process
//     that then starts its workers.
//  3. Auto-host, the default of [Dial]: when nothing listens at the path, the
//     first process to take the flock on PATH.lock serves from inside itself
//     and the others connect. When that process exits (or its server stops
//     accepting for good), the next client to reconnect takes over. The
//     state restarts on takeover: the new server starts with full buckets
//     and free resources. Use concurryd (or Serve in a long-lived parent)
//     when that matters.
//
// # Failures
//
// Holdings belong to a connection: when a process dies or its connection
// drops, the server releases at once everything it held (resource units and
// unsettled acquisitions); rate usage already spent stays spent. A waiting
// Acquire waits in the server, which is told when its context ends, so
// nothing stays taken.
//
// When the server cannot be reached, calls fail fast with an error matching
// concurry.ErrBackendUnavailable that wraps the cause: the client fails
// closed, never granting without the server. The next call after a backoff
// (Options.MinBackoff, doubling up to Options.MaxBackoff) reconnects. A
// server that stops answering is detected after Options.Timeout.
//
// A holder whose connection dropped while it held (the server restarted, or
// dropped a client that stopped reading) is told: Update and Release return
// an error matching concurry.ErrLeaseLost, since another process may have
// had its resources meanwhile. The rate usage it reports is still charged,
// to the set of the same name on reconnect, or the error says it was not;
// and LimitSet.Stats counts such holdings in LeasesLost. An idle
// connection is watched, so a drop is noticed at once, not at the next
// request.
//
// # Decisions and feedback
//
// The server's decisions carry their facts across the socket: a refusal is
// a concurry.RefusalError with the key that refused and RetryAfter, a wait
// reports the limit that blocked it (the WaitStart hook), and Stats show
// debt. Feedback from the upstream — LimitSet.Pause after a 429,
// LimitSet.Lower from rate-limit headers — is applied to the server's set,
// so it holds for every process that shares it: a 429 seen by one process
// pauses the waiters of all. The server forgets a set nobody has open only
// when it is full again, so neither a restarting client nor a Keyed that
// forgets an idle identity can reset a budget.
//
// # Limits
//
// The client refuses, before sending anything, what the server would: a
// name or definition outside the contract (concurry.ErrInvalidLimit), more
// sets open or acquisitions waiting on one connection than the server's
// caps, which it learns at hello (ErrServerLimit). The server caps what
// clients can make it hold — connections, sets, waits, frame size and time
// (see ServerOptions) — and forgets a set nobody uses once it is full again.
// A request past a cap is refused alone: the connection and everything it
// holds are kept.
//
// # Security
//
// The socket is created with mode 0600, so only the server's user can
// connect; ServerOptions.Mode 0660 with ServerOptions.Group admits a group.
// The server also checks each peer's uid (SO_PEERCRED) and refuses users
// other than its own unless ServerOptions.AllowUIDs or AllowGIDs admit them.
// The client checks the server the same way: by default it talks only to a
// server of its own user or root (Options.AllowServerUIDs admits others), so
// a squatter on the path cannot grant it anything. The lock file is never
// opened through a symbolic link, and must be a regular file of the server's
// user before it is given the group.
//
// A malformed or oversized frame, an unknown op or an invalid field closes
// only that connection, with the reason logged; a client that does not read
// its replies is dropped after ServerOptions.WriteTimeout, one that stalls
// inside a frame after ServerOptions.FrameTimeout, and one that never says
// hello after ServerOptions.HelloTimeout. No client can hold up another.
//
// Both sides log with log/slog (Options.Logger, ServerOptions.Logger);
// the library discards its log by default.
//
// # Protocol
//
// Compact length-prefixed binary frames, versioned by a hello (a client and a
// server of different versions refuse each other with ErrVersionMismatch),
// with request ids so that one connection carries the requests of many
// goroutines at once. Every request on one set name travels on the same
// connection, in order. A caller reads its own reply when no other goroutine
// is reading, so a lone request costs a write and a read, as an echo does;
// frames sent while a write is under way share the next write. The release
// of an acquisition is pipelined (it waits for no answer, and this client's
// later requests on the set are handled after it): one that returns a
// resource, refunds or charges overage is written at once; one that changes
// nothing another process could see (rate limits, exactly the usage
// granted) goes out with the next request, within 250ms at most.
package unixsock
