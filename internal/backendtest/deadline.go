package backendtest

import (
	"context"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// KeyedCallsByDeadline checks, for a Keyed over b, that every blocking call
// returns by its ctx's deadline while b's store is stalled, and that
// nothing stays held once it goes on. It acquires and releases an identity
// ("old") first, calls stall, and has byDeadline (which fails t unless f
// returns by the deadline it gives f's ctx) run Acquire, TryAcquire, Do,
// Stats and For(id).Acquire of "old" and of a new identity; then it calls
// resume and waits up to 5 s for "old"'s one slot to be free again.
func KeyedCallsByDeadline(t *testing.T, b backend.Backend, stall, resume func(), byDeadline func(t *testing.T, what string, f func(ctx context.Context) error)) {
	t.Helper()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Name: t.Name(), Backend: b, Limits: []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 10},
		concurry.ResourceLimit{Key: "slot", Capacity: 1},
	}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	a, err := k.Acquire(context.Background(), "old", nil)
	if err != nil {
		t.Fatal(err)
	}
	_ = a.Release()
	stall()
	for _, id := range []string{"old", "new"} {
		byDeadline(t, "Keyed.Acquire "+id, func(ctx context.Context) error {
			_, err := k.Acquire(ctx, id, nil)
			return err
		})
		byDeadline(t, "Keyed.TryAcquire "+id, func(ctx context.Context) error {
			_, err := k.TryAcquire(ctx, id, nil)
			return err
		})
		byDeadline(t, "Keyed.Do "+id, func(ctx context.Context) error {
			return k.Do(ctx, id, nil, func(context.Context, *concurry.Acquisition) error { return nil })
		})
		byDeadline(t, "Keyed.Stats "+id, func(ctx context.Context) error {
			_, err := k.Stats(ctx, id)
			return err
		})
		byDeadline(t, "Keyed.For.Acquire "+id, func(ctx context.Context) error {
			_, err := k.For(id).Acquire(ctx, nil)
			return err
		})
	}
	resume()
	// Nothing held: the old identity's slot is free (a grant that reached a
	// gone caller is given back).
	var last error
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(10 * time.Millisecond) {
		a, err := k.TryAcquire(context.Background(), "old", nil)
		if last = err; err == nil {
			_ = a.Release()
			break
		}
	}
	if last != nil {
		t.Errorf("the old identity's slot is taken after the store went on: %v", last)
	}
}
