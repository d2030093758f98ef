package unixsock

import "errors"

// Errors of this package. A client wraps each in backend.ErrBackendUnavailable
// when it stops it from reaching the server.
var (
	// ErrVersionMismatch reports a server that speaks another protocol
	// version than this client.
	ErrVersionMismatch = errors.New("concurry: unix-socket protocol version mismatch")
	// ErrPermissionDenied reports a server that refused this process's user.
	ErrPermissionDenied = errors.New("concurry: unix-socket server refused this user")
	// ErrServerRunning reports that another server already serves the path
	// (it holds PATH.lock).
	ErrServerRunning = errors.New("concurry: a server already serves this socket")
	// ErrNoName reports a set opened without a name: a shared set is found
	// by its name (concurry.WithName).
	ErrNoName = errors.New("concurry: a shared limit set needs a name")
	// ErrConnLost reports that the connection a request or lease belonged to
	// dropped; the server released everything the connection held.
	ErrConnLost = errors.New("concurry: connection to the limit server lost")
)
