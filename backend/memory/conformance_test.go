package memory_test

import (
	"testing"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/internal/backendtest"
)

// TestConformance runs the backend conformance suite on a fresh in-memory
// backend per case, with every capability.
func TestConformance(t *testing.T) {
	caps := backendtest.Capabilities{Facts: true, Feedback: true}
	backendtest.RunWith(t, caps, func(*testing.T) backend.Backend { return memory.New() })
}
