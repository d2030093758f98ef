package memset

import (
	"context"
	"slices"
	"testing"
	"testing/synctest"
	"time"

	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
)

// The guide's set: calls, tokens, connections.
func leadSpecsOfGuide() []backend.Spec {
	return []backend.Spec{
		{Key: "calls", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 100},
		{Key: "tokens", Kind: backend.Rate, Algorithm: algorithms.TokenBucket, Window: time.Hour, Capacity: 1000},
		{Key: "conns", Kind: backend.Resource, Capacity: 2},
	}
}

// GrantLead grants base with n at lead, and ReleaseLead settles the lead's
// usage and returns the resources, reporting the refund as made.
func TestGrantLeadAndReleaseLead(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		s := NewSet(leadSpecsOfGuide())
		h := s.Handle(nil)
		defer h.Close()
		base := []int64{1, 0, 1}
		if !h.GrantLead(base, 1, 500) {
			t.Fatal("a new set refused 500 tokens")
		}
		if got := available(s); !slices.Equal(got, []int64{99, 500, 1}) {
			t.Fatalf("after the grant: %v, want [99 500 1]", got)
		}
		if r := h.ReleaseLead(base, 1, 500, -80); r != 80 {
			t.Fatalf("refunded %d, want 80", r)
		}
		if got := available(s); !slices.Equal(got, []int64{99, 580, 2}) {
			t.Fatalf("after the release: %v, want [99 580 2]", got)
		}
		if !slices.Equal(base, []int64{1, 0, 1}) {
			t.Fatalf("base changed: %v", base)
		}
		// Overage is charged; a full bucket caps a refund.
		if !h.GrantLead(base, 1, 10) {
			t.Fatal("refused 10 tokens")
		}
		if r := h.ReleaseLead(base, 1, 10, 5); r != 0 {
			t.Fatalf("overage refunded %d", r)
		}
		if got := available(s); got[1] != 565 {
			t.Fatalf("after 15 of a grant of 10: %d tokens, want 565", got[1])
		}
		time.Sleep(time.Hour)
		if !h.GrantLead(base, 1, 10) {
			t.Fatal("refused 10 tokens")
		}
		time.Sleep(time.Hour)
		if r := h.ReleaseLead(base, 1, 10, -10); r != 0 {
			t.Fatalf("refunded %d into a full bucket, want 0", r)
		}
	})
}

// GrantLead reports false, taking nothing, where Acquire would not grant at
// once or where it cannot tell without the general path.
func TestGrantLeadDeclines(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		guide := leadSpecsOfGuide()
		base := []int64{1, 0, 1}
		check := func(name string, s *Set, h *Handle, base []int64, lead int, n int64) {
			t.Helper()
			before := slices.Clone(s.block)
			if h.GrantLead(base, lead, n) {
				t.Fatalf("%s: granted", name)
			}
			if !slices.Equal(s.block, before) {
				t.Fatalf("%s: the state changed: %v -> %v", name, before, s.block)
			}
		}

		s := NewSet(guide)
		h := s.Handle(nil)
		check("no room", s, h, base, 1, 1001)
		h.GrantLead(base, 1, 1)
		h.GrantLead(base, 1, 1)
		check("no connection left", s, h, base, 1, 1)
		h.ReleaseLead(base, 1, 1, 0)

		// A waiter is queued: 999 more tokens than are there.
		ctx, cancel := context.WithCancel(bg)
		done := make(chan error)
		go func() {
			_, err := h.Acquire(ctx, []int64{1, 999, 0}, backend.AcquireOptions{Wait: true})
			done <- err
		}()
		synctest.Wait()
		check("a waiter", s, h, []int64{1, 0, 0}, 1, 1)
		cancel()
		<-done

		if err := h.Pause(bg, 1, time.Now().Add(time.Minute).UnixNano()); err != nil {
			t.Fatal(err)
		}
		check("a pause", s, h, base, 1, 1)
		h.Close()
		time.Sleep(2 * time.Minute)
		check("closed", s, h, base, 1, 1)

		sw := append(slices.Clone(guide), backend.Spec{Key: "w", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: time.Hour, Capacity: 10})
		s = NewSet(sw)
		check("a SlidingWindow", s, s.Handle(nil), []int64{1, 0, 1, 0}, 1, 1)

		var many []backend.Spec
		for i := range leadSpecs + 1 {
			many = append(many, backend.Spec{Key: string(rune('a' + i)), Kind: backend.Resource, Capacity: 5})
		}
		s = NewSet(many)
		check("too many specs", s, s.Handle(nil), slices.Repeat([]int64{1}, len(many)), 0, 1)
	})
}

// A set of one resource grants and returns a lead grant without its lock,
// as Acquire does.
func TestGrantLeadSolo(t *testing.T) {
	s := NewSet([]backend.Spec{{Key: "conns", Kind: backend.Resource, Capacity: 3}})
	h := s.Handle(nil)
	defer h.Close()
	if !h.GrantLead([]int64{0}, 0, 3) {
		t.Fatal("refused 3 of 3")
	}
	if h.GrantLead([]int64{0}, 0, 1) {
		t.Fatal("granted a fourth")
	}
	if r := h.ReleaseLead([]int64{0}, 0, 3, 0); r != 0 {
		t.Fatalf("a resource refunded %d", r)
	}
	if got := available(s); got[0] != 3 {
		t.Fatalf("after the release: %d available, want 3", got[0])
	}
}

func available(s *Set) []int64 {
	var out []int64
	for _, st := range s.stats() {
		out = append(out, st.Available)
	}
	return out
}
