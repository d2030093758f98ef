package worker

// WorkerStats describes one worker of a pool (in OnDemand mode, one worker
// index) at an instant.
type WorkerStats struct {
	Index         int
	Queued        int   // submitted and not started
	InFlight      int   // running now, retry waits included
	Dispatched    int64 // tasks given to this worker so far
	Completed     int64 // tasks that succeeded
	Failed        int64 // tasks that failed, were cancelled or were stopped
	Retried       int64 // retries made (attempts after the first)
	QueueCapacity int   // MaxQueuedTasks; -1 when unbounded, 0 in Sync and OnDemand modes
}

// Stats describes a pool at an instant.
type Stats struct {
	Mode          Mode
	Balancing     Balancing     // as resolved: never DefaultBalancing
	Workers       []WorkerStats // by index
	OnDemandAlive int           // OnDemand tasks alive now
	Stopped       bool          // Stop has been called
}

// Dispatched returns the number of tasks given to each worker so far, by
// index.
func (s Stats) Dispatched() []int64 {
	d := make([]int64, len(s.Workers))
	for i, w := range s.Workers {
		d[i] = w.Dispatched
	}
	return d
}

// Stats returns the pool's counters. It is safe for concurrent use.
func (p *Pool[T]) Stats() Stats {
	st := Stats{
		Mode: p.opts.Mode, Balancing: p.opts.Balancing, Stopped: p.stopped.Load(),
		Workers: make([]WorkerStats, len(p.counters)),
	}
	for i := range p.counters {
		c := &p.counters[i]
		ws := WorkerStats{
			Index: i, InFlight: p.slots[i].inFlight(), Dispatched: c.dispatched.Load(),
			Completed: c.completed.Load(), Failed: c.failed.Load(), Retried: c.retried.Load(),
			QueueCapacity: p.opts.MaxQueuedTasks,
		}
		if p.workers != nil { // unfinished: queued, handed to the idle worker, or running
			ws.Dispatched = p.workers[i].dispatched()
			ws.Queued = max(0, int(p.workers[i].unfinished())-ws.InFlight)
		}
		st.Workers[i] = ws
	}
	if p.od != nil {
		st.OnDemandAlive = p.od.alive()
	}
	return st
}
