package worker

import (
	"context"
	"math/rand/v2"
	"sync"
)

// onDemand tracks the worker slots of an OnDemand pool: MaxWorkers indices,
// each busy while a task runs in it.
type onDemand struct {
	gate *gate // one slot per index

	mu   sync.Mutex
	busy []bool // guarded by mu
	next int    // guarded by mu; RoundRobin cursor
}

func newOnDemand(n int) *onDemand {
	return &onDemand{gate: newGate(n), busy: make([]bool, n)}
}

// take marks a free index busy and returns it; the gate guarantees there is
// one.
func (od *onDemand) take(b Balancing, cs []counters) int {
	od.mu.Lock()
	defer od.mu.Unlock()
	free := make([]int, 0, len(od.busy))
	for i, busy := range od.busy {
		if !busy {
			free = append(free, i)
		}
	}
	pick := free[0] // LeastActive: every free index has nothing in flight
	switch b {
	case Random:
		pick = free[rand.IntN(len(free))]
	case RoundRobin:
		pick = free[0]
		for _, i := range free {
			if i >= od.next {
				pick = i
				break
			}
		}
		od.next = (pick + 1) % len(od.busy)
	case LeastTotal:
		for _, i := range free {
			if cs[i].dispatched.Load() < cs[pick].dispatched.Load() {
				pick = i
			}
		}
	}
	od.busy[pick] = true
	return pick
}

func (od *onDemand) put(i int) {
	od.mu.Lock()
	od.busy[i] = false
	od.mu.Unlock()
}

func (od *onDemand) alive() int {
	od.mu.Lock()
	defer od.mu.Unlock()
	n := 0
	for _, b := range od.busy {
		if b {
			n++
		}
	}
	return n
}

// startOnDemand waits for a free slot and starts j in a goroutine of its own,
// with a fresh value built for it. noWait fails with ErrDeadlock instead of
// waiting: the caller holds the only slot.
func (p *Pool[T]) startOnDemand(ctx context.Context, j job[T], noWait bool) error {
	if err := p.od.gate.acquire(ctx, p.closing, noWait); err != nil {
		return err
	}
	i := p.od.take(p.opts.Balancing, p.counters)
	if !p.enter() {
		p.od.put(i)
		p.od.gate.release()
		return ErrStopped
	}
	e := &env[T]{c: &p.core, index: i, st: &p.counters[i], factory: p.factory}
	e.release = func() {
		p.od.put(i)
		p.od.gate.release()
	}
	e.st.dispatched.Add(1)
	go func() {
		defer p.exit()
		j.run(e)
	}()
	return nil
}
