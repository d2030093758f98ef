package redis_test

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/httplimit"
)

// The HTTP load test: three child processes each serve httplimit.Handler
// over a Keyed on one redis-server, under the same Name, so every identity's
// limit is shared by the three; the parent sends ten times the allowed rate
// for many identities, spread over the three servers.
//
// Redis decides at an instant no process observes: a grant is known to lie
// between the instant its request reached the child's handler and the
// instant the limited handler ran, and a refusal between the instants the
// parent sent the request and read the answer. The checks hold for every
// instant within those bounds, so a loaded machine, which widens them,
// makes them weaker, never wrong.
//
// Its scale (loadIdentities, loadWindow, loadRun: a window and a half, so
// that every identity's room comes back once) is in
// httplimit_load_scale_test.go: the 10,000 identities in a normal
// build, which make test runs once more without -race for it, and 1,000
// under the race detector, which makes every process several times slower.
const (
	loadCapacity = 1 // each identity: loadCapacity calls per loadWindow, sliding
	loadServers  = 3
	apiKey       = "X-Api-Key"
)

func loadLimits() []concurry.Limit {
	return []concurry.Limit{concurry.CallLimit{Window: loadWindow, Capacity: loadCapacity, Algorithm: concurry.SlidingWindow}}
}

// runHTTPChild is an "http" child's main: it serves 200 OK behind
// httplimit.Handler over a Keyed named by nameEnv on the Redis at addrEnv,
// prints "listening" and its address, and serves until its stdin closes.
// Then it prints, per identity, "admitted", the identity and the bounds
// (Unix ns) of each of its grants: when the request reached the server's
// handler and when the limited handler ran; then "done".
func runHTTPChild() int {
	client := redis.NewClient(&redis.Options{Addr: os.Getenv(addrEnv), PoolSize: 64})
	defer client.Close()
	var mu sync.Mutex
	admitted := make(map[string][]int64) // guarded by mu; pairs of bounds
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: cr.New(client, cr.Options{}), Name: os.Getenv(nameEnv),
		Limits: loadLimits()})
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer k.Close()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	ok := http.HandlerFunc(func(_ http.ResponseWriter, r *http.Request) {
		granted := time.Now().UnixNano()
		id := r.Header.Get(apiKey)
		mu.Lock()
		admitted[id] = append(admitted[id], r.Context().Value(arrivedKey{}).(int64), granted)
		mu.Unlock()
	})
	limited := httplimit.Handler(ok, httplimit.Options{Keyed: k, Identity: httplimit.Header(apiKey)})
	arrive := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		ctx := context.WithValue(r.Context(), arrivedKey{}, time.Now().UnixNano())
		limited.ServeHTTP(w, r.WithContext(ctx))
	})
	srv := &http.Server{Handler: arrive}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	fmt.Println("listening", ln.Addr())
	_, _ = io.Copy(io.Discard, os.Stdin) // until the parent closes it
	_ = srv.Close()
	<-served
	out := bufio.NewWriter(os.Stdout)
	mu.Lock()
	for id, at := range admitted {
		fmt.Fprint(out, "admitted ", id)
		for _, t := range at {
			fmt.Fprint(out, " ", t)
		}
		fmt.Fprintln(out)
	}
	mu.Unlock()
	fmt.Fprintln(out, "done")
	_ = out.Flush()
	return 0
}

type arrivedKey struct{}

// loadChild is a running "http" child.
type loadChild struct {
	url   string
	stdin io.Closer
	out   *bufio.Scanner
	cmd   *exec.Cmd
}

func startLoadChild(t *testing.T, addr, name string) *loadChild {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := startChild(t, cmd, "http", addr, name)
	out.Buffer(nil, 1<<20)
	if !out.Scan() {
		t.Fatalf("child: no output: %v", out.Err())
	}
	a, ok := strings.CutPrefix(out.Text(), "listening ")
	if !ok {
		t.Fatalf("child: %q", out.Text())
	}
	return &loadChild{url: "http://" + a + "/", stdin: stdin, out: out, cmd: cmd}
}

// grant is what bounds the instant Redis granted a request.
type grant struct{ from, to time.Time }

func (g grant) String() string {
	return g.from.Format("15:04:05.000000") + "-" + g.to.Format("15:04:05.000000")
}

// admissions stops the child's server and adds the grants it reports to
// into, per identity.
func (c *loadChild) admissions(into map[string][]grant) error {
	_ = c.stdin.Close()
	for c.out.Scan() {
		line := c.out.Text()
		if line == "done" {
			return c.cmd.Wait()
		}
		f := strings.Fields(line)
		if len(f) < 2 || f[0] != "admitted" || len(f)%2 != 0 {
			return fmt.Errorf("child: %q", line)
		}
		for i := 2; i < len(f); i += 2 {
			from, err1 := strconv.ParseInt(f[i], 10, 64)
			to, err2 := strconv.ParseInt(f[i+1], 10, 64)
			if err1 != nil || err2 != nil {
				return fmt.Errorf("child: %q", line)
			}
			into[f[1]] = append(into[f[1]], grant{time.Unix(0, from), time.Unix(0, to)})
		}
	}
	return fmt.Errorf("child: output ended before done: %v", c.out.Err())
}

// sent is one request the parent sent: when it went out, when its answer
// came back, and the answer.
type sent struct {
	out, back  time.Time
	code       int
	retryAfter string
}

// TestHTTPLoadAcrossProcesses: three processes serve the middleware over
// one Redis; identities send ten times their rate for a window and a half,
// each request to one of the three servers in turn. For every
// identity, the grants the three processes made together are never more
// than the limit allows over any window, every refusal came while the
// window was full (so nothing was refused that an exact limiter admits),
// and at least 95 % of what the limit allows over the run was admitted.
// Every 429 carries Retry-After, and a client that waits exactly that long
// (on another of the servers) is admitted.
func TestHTTPLoadAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	children := make([]*loadChild, loadServers)
	for i := range children {
		children[i] = startLoadChild(t, srv.Addr, t.Name())
	}
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 64}, Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()

	patient := make(chan error, 1)
	go func() { patient <- waitRetryAfter(c, children) }()
	log, failures := sendLoad(c, children)
	if err := <-patient; err != nil {
		t.Error(err)
	}
	if failures > 0 {
		t.Fatalf("%d requests failed", failures)
	}
	admitted := make(map[string][]grant)
	for _, ch := range children {
		if err := ch.admissions(admitted); err != nil {
			t.Fatal(err)
		}
	}
	checkLoad(t, log, admitted)
}

// sendLoad sends ten times the allowed rate for every identity, for
// loadRun, from a pool of clients, and returns every request sent per
// identity and how many failed.
func sendLoad(c *http.Client, children []*loadChild) (map[string][]sent, int64) {
	interval := loadWindow / (10 * loadCapacity) // ten times the rate
	rounds := int(loadRun / interval)
	type job struct {
		id  string
		url string
	}
	jobs := make(chan job, 4096)
	var mu sync.Mutex
	log := make(map[string][]sent, loadIdentities)
	var failures atomic.Int64
	var wg sync.WaitGroup
	for range 64 {
		wg.Go(func() {
			for j := range jobs {
				s := send(c, j.url, j.id)
				if s.code != http.StatusOK && s.code != http.StatusTooManyRequests {
					failures.Add(1)
					continue
				}
				mu.Lock()
				log[j.id] = append(log[j.id], s)
				mu.Unlock()
			}
		})
	}
	// Identity i sends at start + i·interval/ids + k·interval, round k to
	// server (i+k) mod 3: the load is even over time and over the servers.
	total := rounds * loadIdentities
	step := interval / loadIdentities
	start := time.Now()
	tick := time.NewTicker(2 * time.Millisecond)
	defer tick.Stop()
	for n := 0; n < total; {
		due := min(total, int(time.Since(start)/step)+1)
		for ; n < due; n++ {
			i, k := n%loadIdentities, n/loadIdentities
			jobs <- job{id: "id-" + strconv.Itoa(i), url: children[(i+k)%len(children)].url}
		}
		<-tick.C
	}
	close(jobs)
	wg.Wait()
	return log, failures.Load()
}

func send(c *http.Client, url, id string) sent {
	req, _ := http.NewRequest(http.MethodGet, url, nil)
	req.Header.Set(apiKey, id)
	s := sent{out: time.Now()}
	resp, err := c.Do(req)
	if err != nil {
		return s
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	s.back, s.code, s.retryAfter = time.Now(), resp.StatusCode, resp.Header.Get("Retry-After")
	return s
}

// waitRetryAfter takes an identity's whole limit through the first server,
// is refused by the second, waits exactly its Retry-After and must then be
// admitted by the third.
func waitRetryAfter(c *http.Client, children []*loadChild) error {
	const id = "patient"
	for range loadCapacity {
		if s := send(c, children[0].url, id); s.code != http.StatusOK {
			return fmt.Errorf("patient: first requests answered %d", s.code)
		}
	}
	s := send(c, children[1].url, id)
	if s.code != http.StatusTooManyRequests {
		return fmt.Errorf("patient: over its limit answered %d, want 429", s.code)
	}
	secs, err := strconv.Atoi(s.retryAfter)
	if err != nil || secs < 1 {
		return fmt.Errorf("patient: Retry-After %q", s.retryAfter)
	}
	time.Sleep(time.Duration(secs) * time.Second) // what is tested: waiting exactly Retry-After
	if s := send(c, children[2].url, id); s.code != http.StatusOK {
		return fmt.Errorf("patient: after waiting Retry-After (%ds) answered %d, want 200", secs, s.code)
	}
	return nil
}

// checkLoad checks every identity's log against the grants the children
// saw, and reports the totals.
func checkLoad(t *testing.T, log map[string][]sent, admitted map[string][]grant) {
	t.Helper()
	var requests, oks, refusals, failed int
	for i := range loadIdentities {
		id := "id-" + strconv.Itoa(i)
		reqs, at := log[id], admitted[id]
		slices.SortFunc(at, func(a, b grant) int { return a.from.Compare(b.from) })
		slices.SortFunc(reqs, func(a, b sent) int { return a.out.Compare(b.out) })
		if err := checkIdentity(id, reqs, at); err != nil {
			if failed++; failed <= 10 {
				t.Error(err)
			}
			continue
		}
		requests += len(reqs)
		oks += len(at)
		refusals += len(reqs) - len(at)
	}
	if failed > 0 {
		t.Fatalf("%d of %d identities failed", failed, loadIdentities)
	}
	t.Logf("%d identities over %d processes: %d requests, %d admitted, %d refused with Retry-After, in %v",
		loadIdentities, loadServers, requests, oks, refusals, loadRun)
}

// checkIdentity checks one identity: reqs are its requests in the order
// sent, at its grants in the order of their lower bounds.
func checkIdentity(id string, reqs []sent, at []grant) error {
	oks := 0
	for _, s := range reqs {
		if s.code == http.StatusOK {
			oks++
			continue
		}
		if n, err := strconv.Atoi(s.retryAfter); err != nil || n < 1 || n > int(loadWindow/time.Second) {
			return fmt.Errorf("%s: a 429 with Retry-After %q, want 1 to %d seconds", id, s.retryAfter, int(loadWindow/time.Second))
		}
		// An exact limiter refuses at d only while loadCapacity grants lie
		// in (d-window, d]; d is within [out, back]. Count the grants
		// that can lie there for some such d.
		n := 0
		for _, g := range at {
			if g.to.After(s.out.Add(-loadWindow)) && !g.from.After(s.back) {
				n++
			}
		}
		if n < loadCapacity {
			return fmt.Errorf("%s: refused between %v and %v with %d grants in the window before, limit %d", id, s.out, s.back, n, loadCapacity)
		}
	}
	if oks != len(at) {
		return fmt.Errorf("%s: %d answers 200, but the servers saw %d grants", id, oks, len(at))
	}
	// The bound over every window: no more than loadCapacity grants of
	// which the earliest possible instant of the first and the latest
	// possible instant of every other are less than a window apart.
	for i, first := range at {
		n := 0
		for _, g := range at[i:] {
			if g.to.Sub(first.from) < loadWindow {
				n++
			}
		}
		if n > loadCapacity {
			return fmt.Errorf("%s: %d grants within %v from %v, limit %d (grants: %v)", id, n, loadWindow, first.from, loadCapacity, at)
		}
	}
	return admittedEnough(id, reqs, len(at))
}

// admittedEnough checks that an identity that sent reqs, in the order
// sent, was admitted at least 95 % of what an exact limiter admits.
func admittedEnough(id string, reqs []sent, admitted int) error {
	// From an identity's first request on, the room a grant took comes
	// back a window after it was decided, which is at most the request's
	// latency after it was sent, and the next request goes out at most one
	// gap later: over its span s, with largest gap g and largest latency l,
	// an exact limiter admits at least capacity·(1 + ⌊s/(window+g+l)⌋).
	if len(reqs) == 0 {
		return fmt.Errorf("%s: sent nothing", id)
	}
	var gap, latency time.Duration
	for i, r := range reqs {
		latency = max(latency, r.back.Sub(r.out))
		if i > 0 {
			gap = max(gap, r.out.Sub(reqs[i-1].out))
		}
	}
	span := reqs[len(reqs)-1].out.Sub(reqs[0].out)
	bound := loadCapacity * (1 + int(span/(loadWindow+gap+latency)))
	if float64(admitted) < 0.95*float64(bound) {
		return fmt.Errorf("%s: %d admitted over %v (largest gap %v, latency %v), want at least 95%% of %d", id, admitted, span, gap, latency, bound)
	}
	return nil
}
