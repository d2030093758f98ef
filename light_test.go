package concurry_test

import (
	"context"
	"errors"
	"sync"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// TestLightAcquisition checks the acquisitions a TryAcquire of no named
// key makes from a set of call and resource limits in memory, which keep no
// holding: what they report, what Update accepts, and that a release, even
// raced by many goroutines, returns the resources exactly once.
func TestLightAcquisition(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "conn", Capacity: 2},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	inUse := func() int64 {
		t.Helper()
		st, err := ls.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range st.Limits {
			if l.Key == "conn" {
				return l.InUse
			}
		}
		t.Fatal("no conn in stats")
		return 0
	}
	a1, err := ls.TryAcquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	a2, err := ls.TryAcquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.TryAcquire(ctx, nil); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("third TryAcquire of 2 connections: %v, want ErrWouldBlock", err)
	}
	if g := a1.Granted(concurry.CallKey); g != 1 {
		t.Errorf("Granted(calls) = %d, want 1", g)
	}
	if g := a1.Granted("conn"); g != 1 {
		t.Errorf("Granted(conn) = %d, want 1", g)
	}
	if g := a1.Granted("nope"); g != 0 {
		t.Errorf("Granted(nope) = %d, want 0", g)
	}
	if err := a1.Update(concurry.Amounts{"conn": 1, concurry.CallKey: 1}); err != nil {
		t.Errorf("Update with the grant: %v", err)
	}
	if err := a1.Update(concurry.Amounts{"conn": 2}); !errors.Is(err, concurry.ErrInvalidRequest) {
		t.Errorf("Update of a resource past its grant: %v, want ErrInvalidRequest", err)
	}
	if err := a1.Update(concurry.Amounts{"nope": 1}); !errors.Is(err, concurry.ErrUnknownKey) {
		t.Errorf("Update of an unknown key: %v, want ErrUnknownKey", err)
	}
	if err := a1.Update(concurry.Amounts{"conn": -1}); !errors.Is(err, concurry.ErrInvalidRequest) {
		t.Errorf("Update of a negative usage: %v, want ErrInvalidRequest", err)
	}

	var wg sync.WaitGroup
	start := make(chan struct{})
	for range 16 {
		wg.Go(func() {
			<-start
			if err := a1.Release(); err != nil {
				t.Errorf("Release: %v", err)
			}
		})
	}
	close(start)
	wg.Wait()
	if n := inUse(); n != 1 {
		t.Fatalf("after 16 racing releases of one acquisition, %d connections in use, want 1", n)
	}
	if err := a1.Update(concurry.Amounts{"conn": 1}); !errors.Is(err, concurry.ErrReleased) {
		t.Errorf("Update after Release: %v, want ErrReleased", err)
	}
	if g := a1.Granted("conn"); g != 0 {
		t.Errorf("Granted after Release = %d, want 0", g)
	}
	if err := a2.Release(); err != nil {
		t.Fatal(err)
	}
	if n := inUse(); n != 0 {
		t.Fatalf("%d connections in use after both releases, want 0", n)
	}
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range st.Limits {
		if l.Granted != 2 {
			t.Errorf("%s: Granted %d, want 2", l.Key, l.Granted)
		}
	}
}

// TestGrantedCounts checks Stats' Granted per limit when grants take one
// unit of every call and resource limit (counted once for them all) and
// when a request names more of one.
func TestGrantedCounts(t *testing.T) {
	ctx := context.Background()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: 100},
		concurry.RateLimit{Key: "tokens", Window: time.Hour, Capacity: 100},
		concurry.ResourceLimit{Key: "conn", Capacity: 10},
	})
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	for _, req := range []concurry.Amounts{{"tokens": 5}, {"tokens": 1, "conn": 3}, {"tokens": 2}} {
		a, err := ls.Acquire(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		_ = a.Update(concurry.Amounts{"tokens": req["tokens"]})
		if err := a.Release(); err != nil {
			t.Fatal(err)
		}
	}
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]int64{concurry.CallKey: 3, "tokens": 8, "conn": 5}
	for _, l := range st.Limits {
		if l.Granted != want[l.Key] {
			t.Errorf("%s: Granted %d, want %d", l.Key, l.Granted, want[l.Key])
		}
	}
}
