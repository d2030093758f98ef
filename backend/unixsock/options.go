package unixsock

import (
	"log/slog"
	"os"
	"runtime"
	"time"

	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// ServerOptions configure a Server. The zero value is ready to use: every
// zero field means its documented default. The caps bound what clients can
// make the server hold; a request past one is refused with an error
// matching ErrServerLimit, for that request alone.
type ServerOptions struct {
	// Mode is the permission of the socket file. Default 0600: only the
	// server's user can connect. Use 0660 with Group to admit a group.
	Mode os.FileMode
	// Group, when set, is the group (a name or a numeric id) the socket file
	// and its lock file are given, and peers whose primary group it is are
	// admitted. Default "": the socket keeps the process's group.
	Group string
	// AllowUIDs admits peers of these user ids besides the server's own.
	// Peers are identified with SO_PEERCRED. Default: only the server's uid.
	AllowUIDs []int
	// AllowGIDs admits peers whose primary group id is one of these.
	AllowGIDs []int
	// MaxFrame is the longest frame accepted, in bytes; a longer one closes
	// the connection. Default 64 KiB; at least 20 KiB, the longest valid
	// request.
	MaxFrame int
	// HelloTimeout is how long a new connection may take to say hello before
	// it is closed. Default 5s.
	HelloTimeout time.Duration
	// FrameTimeout is how long the rest of a frame may take to arrive once
	// its first byte has; a client that stalls inside a frame is
	// disconnected. An idle connection (between frames) is never timed out.
	// Default 10s.
	FrameTimeout time.Duration
	// WriteTimeout is how long a write to a client may block; a client that
	// does not read its replies for that long is disconnected (and its
	// holdings released). Default 10s.
	WriteTimeout time.Duration
	// MaxConns caps the connections served at once; a connection past it is
	// refused at its hello. Default 1,024.
	MaxConns int
	// MaxSets caps the named sets the server holds at once, open or
	// retained; opening a new name past it is refused. Default 10,000.
	MaxSets int
	// MaxConnSets caps the sets one connection may have open at once.
	// Clients learn it at hello and refuse past it themselves. Default 4,096.
	MaxConnSets int
	// MaxWaits caps the acquisitions waiting in the server at once, over
	// every connection; each costs a goroutine (a few KiB). Default 65,536.
	MaxWaits int
	// MaxConnWaits caps the acquisitions one connection may have waiting at
	// once. Clients learn it at hello and refuse past it themselves.
	// Default 16,384.
	MaxConnWaits int
	// Retain is how long a set that no connection has open is kept before it
	// is forgotten (and may be defined anew). Default: until it is full again
	// — every rate limit back at capacity, no debt left, no pause in force,
	// no resource held — checked every IdleCheck, however long that takes,
	// so that forgetting it resets nothing: a client restarting, or a Keyed
	// forgetting an idle identity, cannot reset a budget. A positive Retain
	// forgets after that long whatever the set's state; negative: forget at
	// once.
	Retain time.Duration
	// IdleCheck is how often a set that no connection has open is checked
	// for being full again, under the default Retain. Default 1 minute.
	IdleCheck time.Duration
	// Logger receives the server's log: connections refused, clients
	// dropped for misbehaving (Warn), connections and disconnections
	// (Debug). Default: discard. (concurryd logs to standard error.)
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	o.MaxFrame = max(o.MaxFrame, wire.MinLimit)
	defaultDuration(&o.HelloTimeout, 5*time.Second)
	defaultDuration(&o.FrameTimeout, 10*time.Second)
	defaultDuration(&o.WriteTimeout, 10*time.Second)
	defaultDuration(&o.IdleCheck, time.Minute)
	defaultInt(&o.MaxConns, 1024)
	defaultInt(&o.MaxSets, 10_000)
	defaultInt(&o.MaxConnSets, 4096)
	defaultInt(&o.MaxWaits, 1<<16)
	defaultInt(&o.MaxConnWaits, 1<<14)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	return o
}

func defaultDuration(d *time.Duration, def time.Duration) {
	if *d <= 0 {
		*d = def
	}
}

func defaultInt(n *int, def int) {
	if *n <= 0 {
		*n = def
	}
}

// Options configure a Client. The zero value is ready to use: every zero
// field means its documented default.
type Options struct {
	// Conns is the number of connections requests are spread over; each
	// carries any number of concurrent requests. Default: GOMAXPROCS, at
	// most 4.
	Conns int
	// Timeout bounds connecting (dial and hello) and how long the server may
	// leave a request that needs no waiting (opening a set, TryAcquire,
	// Settle, Stats, a cancellation) unanswered before the connection is
	// declared dead. Default 5s.
	Timeout time.Duration
	// MinBackoff is the wait after a failed connection attempt before the
	// next call tries again; calls in between fail at once with
	// backend.ErrBackendUnavailable. It doubles on every failure up to
	// MaxBackoff. Defaults 10ms and 1s.
	MinBackoff time.Duration
	// MaxBackoff caps MinBackoff's doubling. Default 1s.
	MaxBackoff time.Duration
	// DisableAutoHost stops the client from serving the socket itself when
	// nothing listens at its path. Set it when a concurryd daemon is the
	// server, so that clients wait for it rather than take over. Default
	// false: auto-host.
	DisableAutoHost bool
	// AllowServerUIDs admits servers running as these user ids. The client
	// checks the server's credentials (SO_PEERCRED) before its hello and
	// refuses, with ErrUntrustedServer, a server of any other user than its
	// own or root: another user squatting the socket path could grant
	// anything. Default: only this process's effective uid and root.
	AllowServerUIDs []int
	// Logger receives the client's log: connections lost and made again,
	// auto-hosting taken up or given up. Default: discard.
	Logger *slog.Logger
	// Server configures the server this client starts when it auto-hosts.
	// Its Logger defaults to the client's.
	Server ServerOptions
}

func (o Options) withDefaults() Options {
	if o.Conns <= 0 {
		o.Conns = min(4, runtime.GOMAXPROCS(0))
	}
	defaultDuration(&o.Timeout, 5*time.Second)
	defaultDuration(&o.MinBackoff, 10*time.Millisecond)
	defaultDuration(&o.MaxBackoff, time.Second)
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.Server.Logger == nil {
		o.Server.Logger = o.Logger
	}
	return o
}
