package unixsock

import (
	"errors"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock/internal/wire"
)

// Errors of this package. A client wraps each in backend.ErrBackendUnavailable
// when it stops it from reaching the server.
var (
	// ErrVersionMismatch reports a server that speaks another protocol
	// version than this client.
	ErrVersionMismatch = errors.New("concurry: unix-socket protocol version mismatch")
	// ErrPermissionDenied reports a server that refused this process's user.
	ErrPermissionDenied = errors.New("concurry: unix-socket server refused this user")
	// ErrUntrustedServer reports a server running as a user this client does
	// not trust (see Options.AllowServerUIDs).
	ErrUntrustedServer = errors.New("concurry: unix-socket server runs as an untrusted user")
	// ErrServerRunning reports that another server already serves the path
	// (it holds PATH.lock).
	ErrServerRunning = errors.New("concurry: a server already serves this socket")
	// ErrServerLimit reports a request refused because it would pass one of
	// the server's caps (ServerOptions.MaxConns, MaxSets, MaxConnSets,
	// MaxWaits, MaxConnWaits). Only that request fails: the connection and
	// everything it holds are kept. The client refuses what it knows the
	// server would before sending it.
	ErrServerLimit = wire.ErrServerLimit
	// ErrConnLost reports that the connection a request or holding belonged
	// to dropped; the server released everything the connection held. A
	// holding lost that way is reported with an error matching both this
	// and backend.ErrLeaseLost.
	ErrConnLost = errors.New("concurry: connection to the limit server lost")
	// ErrNoName is backend.ErrNameRequired, under the name this package
	// first gave it.
	//
	// Deprecated: use backend.ErrNameRequired (concurry.ErrNameRequired).
	ErrNoName = backend.ErrNameRequired
)
