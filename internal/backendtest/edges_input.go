package backendtest

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// inputCases returns the cases of requests refused on the client without costing other holdings.
func inputCases() []Case {
	return []Case{
		{"RefusalKeepsHoldings", testRefusalKeepsHoldings},
	}
}

// testRefusalKeepsHoldings holds a resource, then makes requests outside
// the contract through the public API and straight to the backend (a long
// name, a long key, too many limits, a capacity or window out of range):
// each fails with ErrInvalidLimit alone, and the holding is still held — no
// one else can take it, and its Release succeeds.
func testRefusalKeepsHoldings(t *testing.T, e *Env) {
	ls := e.Set(concurry.ResourceLimit{Key: "conn", Capacity: 1})
	held := e.MustAcquire(ls, nil)
	conn := backend.Spec{Key: "conn", Kind: backend.Resource, Capacity: 1}
	tooMany := make([]backend.Spec, backend.MaxSpecs+1)
	for i := range tooMany {
		tooMany[i] = backend.Spec{Key: strings.Repeat("k", i+1), Kind: backend.Resource, Capacity: 1}
	}
	bad := map[string][]backend.Spec{
		"long key":      {{Key: strings.Repeat("k", backend.MaxKeyLen+1), Kind: backend.Resource, Capacity: 1}},
		"too many":      tooMany,
		"capacity":      {{Key: "conn", Kind: backend.Resource, Capacity: backend.MaxCapacity + 1}},
		"window":        {{Key: "calls", Window: backend.MaxWindow + time.Second, Capacity: 1}},
		"empty key":     {{Key: "", Kind: backend.Resource, Capacity: 1}},
		"zero capacity": {conn, {Key: "x", Kind: backend.Resource}},
	}
	for what, specs := range bad {
		_, err := e.Backend.Open(context.Background(), e.Name(), specs)
		e.WantErr(err, concurry.ErrInvalidLimit, "Open ("+what+")")
	}
	// Names over the limit, several, so that a client with a pool of
	// connections sends one on the holder's connection.
	for n := range 8 {
		name := e.Name() + strings.Repeat("n", backend.MaxNameLen+n)
		_, err := e.Backend.Open(context.Background(), name, []backend.Spec{conn})
		e.WantErr(err, concurry.ErrInvalidLimit, "Open with a long name")
		_, err = concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
			concurry.WithName(name), concurry.WithBackend(e.Backend))
		e.WantErr(err, concurry.ErrInvalidLimit, "NewLimitSet with a long name")
	}
	_, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: strings.Repeat("k", backend.MaxKeyLen+1), Capacity: 1}},
		concurry.WithName(e.Name()), concurry.WithBackend(e.Backend))
	e.WantErr(err, concurry.ErrInvalidLimit, "NewLimitSet with a long key")
	e.Blocked(ls, nil)
	e.WantInUse(ls, "conn", 1)
	if err := held.Release(); err != nil {
		t.Fatalf("the holding did not survive the refusals: Release: %v", err)
	}
	e.Done(e.MustTry(ls, nil), nil)
}
