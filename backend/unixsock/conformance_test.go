package unixsock

import (
	"testing"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/internal/backendtest"
)

// caps are what the unix-socket backend claims of the contract: every part.
var caps = backendtest.Capabilities{Facts: true, Feedback: true}

// TestConformance runs the backend conformance suite against a server
// started with Listen and a client with auto-hosting off.
func TestConformance(t *testing.T) {
	backendtest.RunWith(t, caps, func(t *testing.T) backend.Backend {
		srv := startServer(t, ServerOptions{})
		return dial(t, srv.Path(), Options{DisableAutoHost: true})
	})
}

// TestConformanceAutoHost runs the suite with a client that hosts the server
// itself, over a pool of one connection (everything pipelined on it).
func TestConformanceAutoHost(t *testing.T) {
	backendtest.RunWith(t, caps, func(t *testing.T) backend.Backend {
		return dial(t, sockPath(t), Options{Conns: 1})
	})
}
