package unixsock

import (
	"log/slog"
	"os"
	"runtime"
	"time"
)

// ServerOptions configure a Server. The zero value is ready to use: every
// zero field means its documented default.
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
	// the connection. Default 64 KiB.
	MaxFrame int
	// HelloTimeout is how long a new connection may take to say hello before
	// it is closed. Default 5s.
	HelloTimeout time.Duration
	// WriteTimeout is how long a write to a client may block; a client that
	// does not read its replies for that long is disconnected (and its
	// holdings released). Default 10s.
	WriteTimeout time.Duration
	// Retain is how long a set that no connection has open is kept before it
	// is forgotten (and may be defined anew). Default: the set's longest
	// window, so that a client restarting cannot reset a rate limit by
	// reconnecting. Negative: forget at once.
	Retain time.Duration
	// Logger receives the server's log. Default slog.Default().
	Logger *slog.Logger
}

func (o ServerOptions) withDefaults() ServerOptions {
	if o.Mode == 0 {
		o.Mode = 0o600
	}
	if o.MaxFrame <= 0 {
		o.MaxFrame = 64 << 10
	}
	if o.HelloTimeout <= 0 {
		o.HelloTimeout = 5 * time.Second
	}
	if o.WriteTimeout <= 0 {
		o.WriteTimeout = 10 * time.Second
	}
	if o.Logger == nil {
		o.Logger = slog.Default()
	}
	return o
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
	// Server configures the server this client starts when it auto-hosts.
	Server ServerOptions
}

func (o Options) withDefaults() Options {
	if o.Conns <= 0 {
		o.Conns = min(4, runtime.GOMAXPROCS(0))
	}
	if o.Timeout <= 0 {
		o.Timeout = 5 * time.Second
	}
	if o.MinBackoff <= 0 {
		o.MinBackoff = 10 * time.Millisecond
	}
	if o.MaxBackoff <= 0 {
		o.MaxBackoff = time.Second
	}
	o.MaxBackoff = max(o.MaxBackoff, o.MinBackoff)
	return o
}
