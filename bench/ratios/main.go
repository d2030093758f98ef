// Command ratios reads the output of the bench module's benchmarks (several
// passes, as `make bench` runs them) and prints each performance target as a
// ratio of medians — ours over the peer measured in the same run — with the
// spread of each side and whether the target is met.
//
//	go test -run '^$' -bench . -count 5 | go run ./ratios
package main

import (
	"bufio"
	"fmt"
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// target is one row: ours over peer, at most max (0: printed, no target);
// allocs bounds ours' allocations per op (-1: not checked). The row compares ns/op, or the
// Redis CPU per op (srv-µs/op, from INFO commandstats) when cpu is set.
type target struct {
	row, ours, peer string
	max             float64
	allocs          float64
	cpu             bool
}

var targets = []target{
	{"CallLimit TryAcquire+Release vs x/time/rate AllowN", "TryAcquireRelease", "PeerRateAllowN", 1.0, 0, false},
	{"  the same from 64 goroutines", "TryAcquireReleaseParallel", "PeerRateAllowNParallel", 1.0, 0, false},
	{"one RateLimit TryAcquire+Update+Release vs AllowN", "TryAcquireUpdateRelease", "PeerRateAllowN", 1.3, 0, false},
	{"ResourceLimit TryAcquire+Release vs x/sync/semaphore", "ResourceTryAcquireRelease", "PeerSemaphoreTryAcquireRelease", 1.5, 0, false},
	{"calls+tokens+connections vs hand-rolled", "AcquireUpdateRelease3", "PeerHandRolled3", 1.0, 0, false},
	{"  the same from 64 goroutines", "AcquireUpdateRelease3Parallel", "PeerHandRolled3Parallel", 1.3, 0, false},
	{"nil hooks vs no hooks (3 limits)", "AcquireUpdateRelease3NilHooks", "AcquireUpdateRelease3", 1.05, 0, false},
	{"worker Submit+Result vs channel hand-off (1 worker)", "WorkerRoundTrip/workers=1/serial/impl=concurry", "WorkerRoundTrip/workers=1/serial/impl=channel", 1.5, 2, false},
	{"worker Submit+Result vs channel hand-off (8 workers)", "WorkerRoundTrip/workers=8/serial/impl=concurry", "WorkerRoundTrip/workers=8/serial/impl=channel", 1.5, 2, false},
	// redis_rate.Allow at a rate it enforces writes its state on every
	// call, as concurry's acquisitions do (RedisRateAllowWrites); at
	// 2^30 per second (RedisRateAllow) its arrival time moves by less than
	// a double resolves, so it only reads: that row is printed too.
	{"Redis acquire, 3 limits vs redis_rate.Allow", "Redis/Acquire3Limits/serial", "Redis/RedisRateAllowWrites/serial", 1.2, -1, false},
	{"  Redis CPU per call", "Redis/Acquire3Limits/serial", "Redis/RedisRateAllowWrites/serial", 1.5, -1, true},
	{"  vs redis_rate.Allow that never writes (2^30/s)", "Redis/Acquire3Limits/serial", "Redis/RedisRateAllow/serial", 1.2, -1, false},
	{"  Redis CPU per call", "Redis/Acquire3Limits/serial", "Redis/RedisRateAllow/serial", 1.5, -1, true},
	{"Redis full cycle, no resource vs redis_rate.Allow", "Redis/CycleRateOnly/serial", "Redis/RedisRateAllowWrites/serial", 1.3, -1, false},
	{"HTTP middleware on Redis vs ulule's Redis store (1 id)", "HTTPMiddlewareRedis/Concurry/1id", "HTTPMiddlewareRedis/PeerUlule/1id", 1.2, -1, false},
	{"  the same, 10,000 identities", "HTTPMiddlewareRedis/Concurry/10kid", "HTTPMiddlewareRedis/PeerUlule/10kid", 1.2, -1, false},
	// No target: what an exact, epoch-aligned window on the server's clock
	// costs at least (see floorScript), against the peer and against ours.
	{"  the contract's floor vs ulule (1 id)", "HTTPMiddlewareRedis/Floor/1id", "HTTPMiddlewareRedis/PeerUlule/1id", 0, -1, false},
	{"  Redis CPU per request", "HTTPMiddlewareRedis/Floor/1id", "HTTPMiddlewareRedis/PeerUlule/1id", 0, -1, true},
	{"  concurry vs the floor (1 id)", "HTTPMiddlewareRedis/Concurry/1id", "HTTPMiddlewareRedis/Floor/1id", 0, -1, false},
	{"  Redis CPU per request", "HTTPMiddlewareRedis/Concurry/1id", "HTTPMiddlewareRedis/Floor/1id", 0, -1, true},
}

var (
	line = regexp.MustCompile(`^Benchmark(\S+?)(?:-\d+)?\s+\d+\s+([\d.]+) ns/op(?:.*?\s([\d.]+) allocs/op)?`)
	srv  = regexp.MustCompile(`\s([\d.]+) srv-µs/op`)
)

func main() {
	ns, cpu := map[string][]float64{}, map[string][]float64{}
	allocs := map[string]float64{}
	sc := bufio.NewScanner(os.Stdin)
	for sc.Scan() {
		m := line.FindStringSubmatch(sc.Text())
		if m == nil {
			continue
		}
		v, _ := strconv.ParseFloat(m[2], 64)
		ns[m[1]] = append(ns[m[1]], v)
		if c := srv.FindStringSubmatch(sc.Text()); c != nil {
			v, _ := strconv.ParseFloat(c[1], 64)
			cpu[m[1]] = append(cpu[m[1]], v)
		}
		if m[3] != "" {
			allocs[m[1]], _ = strconv.ParseFloat(m[3], 64)
		}
	}
	fmt.Printf("%-55s %12s %12s %7s %7s  %s\n", "target", "ours", "peer", "ratio", "bound", "(ns/op unless said)")
	failed, measured, bounded := 0, 0, 0
	for _, t := range targets {
		if t.max > 0 {
			bounded++
		}
		o, p := ns[t.ours], ns[t.peer]
		if t.cpu {
			o, p = cpu[t.ours], cpu[t.peer]
		}
		if len(o) == 0 || len(p) == 0 {
			fmt.Printf("%-55s %12s %12s %7s %7.2f  not measured in this run\n", t.row, "-", "-", "-", t.max)
			continue
		}
		r := median(o) / median(p)
		if t.max == 0 {
			fmt.Printf("%-55s %12s %12s %7.2f %7s  no target (%s)\n", t.row, spread(o), spread(p), r, "-", unitOf(t, allocs[t.ours]))
			continue
		}
		measured++
		verdict := "met"
		if r > t.max || (t.allocs >= 0 && allocs[t.ours] > t.allocs) {
			verdict, failed = "NOT MET", failed+1
		}
		fmt.Printf("%-55s %12s %12s %7.2f %7.2f  %s (%s)\n", t.row, spread(o), spread(p), r, t.max, verdict, unitOf(t, allocs[t.ours]))
	}
	fmt.Println(strings.Repeat("-", 100))
	fmt.Printf("%d of the %d targets measured not met (%d not measured in this run)\n", failed, measured, bounded-measured)
}

// unitOf names what row t compares: Redis CPU, or ns/op with ours'
// allocations per op.
func unitOf(t target, allocs float64) string {
	if t.cpu {
		return "Redis CPU µs/op"
	}
	return fmt.Sprintf("%g allocs/op", allocs)
}

func median(v []float64) float64 {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// spread prints the median and the range of the passes.
func spread(v []float64) string {
	return fmt.Sprintf("%.1f±%.0f%%", median(v), 100*(slices.Max(v)-slices.Min(v))/2/median(v))
}
