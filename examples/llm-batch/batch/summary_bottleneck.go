package batch

import (
	"context"

	"github.com/concurry/concurry"
)

// bottlenecks fills in each endpoint's WaitSeconds and Bottleneck from the
// Stats of its LimitSet in pool (in Endpoints order): how long requests
// waited on each limit, the one that blocked them. A set whose Stats fail
// is left without.
func (s *Summary) bottlenecks(ctx context.Context, pool *concurry.LimitPool) {
	for i := range min(pool.Len(), len(s.Endpoints)) {
		st, err := pool.At(i).Stats(ctx)
		if err != nil {
			continue
		}
		e := &s.Endpoints[i]
		var longest float64
		for _, l := range st.Limits {
			if l.Waited <= 0 {
				continue
			}
			if e.WaitSeconds == nil {
				e.WaitSeconds = map[string]float64{}
			}
			e.WaitSeconds[l.Key] += l.Waited.Seconds()
			if w := e.WaitSeconds[l.Key]; w > longest {
				longest, e.Bottleneck = w, l.Key
			}
		}
	}
}

// shortKey names a limit's key in the summary's table.
func shortKey(key string) string {
	switch key {
	case concurry.CallKey:
		return "requests"
	case KeyInputTokens:
		return "input"
	case KeyOutputTokens:
		return "output"
	case KeyConnections:
		return "conns"
	}
	return key
}
