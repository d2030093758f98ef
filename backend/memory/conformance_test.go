package memory_test

import (
	"testing"

	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/memory"
	"github.com/concurry/concurry/internal/backendtest"
)

// TestConformance runs the backend conformance suite on a fresh in-memory
// backend per case.
func TestConformance(t *testing.T) {
	backendtest.Run(t, func(*testing.T) backend.Backend { return memory.New() })
}
