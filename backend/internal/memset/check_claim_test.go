package memset

import (
	"context"
	"errors"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// TestCheckClaim: a request with a claim from backend.NewCheckClaim takes
// nothing. Without Wait it answers ErrClaimed when it would be granted now
// and refuses as usual when not; with Wait it waits in line and answers
// ErrClaimed at the instant it would be granted, and the request behind it
// is served as if it had not been there.
func TestCheckClaim(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet([]backend.Spec{{Key: "k", Kind: backend.Rate, Algorithm: algorithms.FixedWindow, Window: time.Second, Capacity: 2}})
		h := s.Handle(nil)
		defer h.Close()
		check := func(wait bool) backend.AcquireOptions {
			return backend.AcquireOptions{Wait: wait, Claim: backend.NewCheckClaim()}
		}
		available := func() int64 {
			st, _ := h.Stats(bg)
			return st[0].Available
		}
		if _, err := h.Acquire(bg, []int64{2}, check(false)); !errors.Is(err, backend.ErrClaimed) {
			t.Fatalf("a check that fits now: %v, want ErrClaimed", err)
		}
		if got := available(); got != 2 {
			t.Fatalf("%d available after a check, want 2: a check takes nothing", got)
		}
		if _, err := h.Acquire(bg, []int64{2}, backend.AcquireOptions{}); err != nil {
			t.Fatal(err)
		}
		_, err := h.Acquire(bg, []int64{1}, check(false))
		var refusal *backend.RefusalError
		if !errors.As(err, &refusal) || !errors.Is(err, backend.ErrWouldBlock) {
			t.Fatalf("a check that does not fit now: %v, want a refusal", err)
		}
		checked, behind := make(chan error, 1), make(chan error, 1)
		start := time.Now()
		go func() {
			_, err := h.Acquire(bg, []int64{2}, check(true))
			checked <- err
		}()
		synctest.Wait()
		go func() {
			_, err := h.Acquire(context.Background(), []int64{2}, wait)
			behind <- err
		}()
		if err := <-checked; !errors.Is(err, backend.ErrClaimed) {
			t.Fatalf("a waiting check: %v, want ErrClaimed", err)
		}
		if d := time.Since(start); d != time.Second {
			t.Fatalf("a waiting check answered after %v, want 1s: the next window", d)
		}
		if err := <-behind; err != nil {
			t.Fatalf("the request behind the check: %v, want granted", err)
		}
		if got := available(); got != 0 {
			t.Fatalf("%d available, want 0: the request behind took the window's 2, the check none", got)
		}
	})
}
