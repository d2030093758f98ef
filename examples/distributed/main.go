// Command distributed shows limits shared through Redis, the way processes
// on several hosts share them: the parent starts two copies of itself, and
// each makes "calls" for two seconds under one CallLimit (20 per second) and
// one ResourceLimit (2 connections) kept in Redis. The parent prints what
// each process was admitted and the total, which stays within the one shared
// budget.
//
//	go run ./examples/distributed                       # starts a redis-server of its own
//	go run ./examples/distributed -addr redis.internal:6379   # uses yours
//
// Without -addr it needs the redis-server binary; when it is missing the
// program says so and exits with status 2.
package main

import (
	"bufio"
	"context"
	"errors"
	"flag"
	"fmt"
	"net"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
)

const (
	processes = 2
	perSecond = 20
	conns     = 2
	runFor    = 2 * time.Second
)

func main() {
	addr := flag.String("addr", "", "Redis address host:port; empty starts a redis-server on a free loopback port")
	worker := flag.Int("worker", 0, "internal: run as worker number n")
	name := flag.String("name", "", "internal: the shared set's name")
	flag.Parse()
	var err error
	if *worker > 0 {
		err = work(*addr, *name, *worker)
	} else {
		err = run(*addr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "distributed:", err)
		os.Exit(1)
	}
}

// run starts Redis if needed, then the workers, and sums what they report.
func run(addr string) error {
	if addr == "" {
		a, stop, err := startRedis()
		if err != nil {
			fmt.Fprintln(os.Stderr, "distributed:", err)
			os.Exit(2)
		}
		defer stop()
		addr = a
	}
	self, err := os.Executable()
	if err != nil {
		return err
	}
	name := fmt.Sprintf("example/%d", time.Now().UnixNano())
	fmt.Printf("%d processes share %d calls/s and %d connections through Redis at %s\n", processes, perSecond, conns, addr)
	admitted := make([]int, processes)
	errs := make([]error, processes)
	var wg sync.WaitGroup
	for i := range processes {
		wg.Go(func() {
			cmd := exec.Command(self, "-worker", strconv.Itoa(i+1), "-addr", addr, "-name", name)
			cmd.Stderr = os.Stderr
			out, err := cmd.Output()
			if err == nil {
				_, err = fmt.Sscanf(string(out), "admitted %d", &admitted[i])
			}
			errs[i] = err
		})
	}
	wg.Wait()
	total := 0
	for i, n := range admitted {
		if errs[i] != nil {
			return fmt.Errorf("worker %d: %w", i+1, errs[i])
		}
		fmt.Printf("process %d: %d calls\n", i+1, n)
		total += n
	}
	// A TokenBucket starts full: one burst of perSecond, then perSecond a second.
	fmt.Printf("total: %d calls in %v (the shared limit allows at most %d)\n", total, runFor, perSecond+int(runFor.Seconds()*perSecond))
	return nil
}

// work is one worker process: it makes calls for runFor, each holding one
// connection for 10 ms, and prints how many it was admitted.
func work(addr, name string, id int) error {
	client := redis.NewClient(&redis.Options{Addr: addr})
	defer client.Close()
	ls, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: perSecond},
		concurry.ResourceLimit{Key: "conn", Capacity: conns},
	}, concurry.WithName(name), concurry.WithBackend(cr.New(client, cr.Options{})))
	if err != nil {
		return err
	}
	defer ls.Close()
	ctx, cancel := context.WithTimeout(context.Background(), runFor)
	defer cancel()
	admitted := 0
	for {
		err := ls.Do(ctx, nil, func(context.Context, *concurry.Acquisition) error {
			time.Sleep(10 * time.Millisecond) // the "call"
			return nil
		})
		if errors.Is(err, context.DeadlineExceeded) {
			break
		}
		if err != nil {
			return err
		}
		admitted++
	}
	fmt.Printf("admitted %d\n", admitted)
	return nil
}

// startRedis starts redis-server on a free loopback port in a temporary
// directory and returns its address and a function that stops it.
func startRedis() (string, func(), error) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		return "", nil, fmt.Errorf("redis-server not found (install it, e.g. apt-get install redis-server, or pass -addr host:port): %w", err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", nil, err
	}
	port := l.Addr().(*net.TCPAddr).Port
	_ = l.Close()
	dir, err := os.MkdirTemp("", "concurry-redis-")
	if err != nil {
		return "", nil, err
	}
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir, "--save", "")
	out, err := cmd.StdoutPipe()
	if err != nil {
		return "", nil, err
	}
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	stop := func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		_ = os.RemoveAll(dir)
	}
	ready := make(chan bool, 1)
	go func() { // redis-server logs this line once it listens
		sc := bufio.NewScanner(out)
		found := false
		for sc.Scan() {
			if !found && strings.Contains(sc.Text(), "Ready to accept connections") {
				found = true
				ready <- true
			}
		}
		if !found {
			ready <- false
		}
	}()
	select {
	case ok := <-ready:
		if ok {
			return "127.0.0.1:" + strconv.Itoa(port), stop, nil
		}
	case <-time.After(10 * time.Second):
	}
	stop()
	return "", nil, errors.New("redis-server did not start within 10 s")
}
