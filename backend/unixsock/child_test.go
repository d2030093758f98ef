package unixsock

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"runtime/pprof"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
)

// The test binary re-executes itself as a child process: childEnv names the
// role, CQ_SOCK and CQ_NAME the socket and the set. Children talk to the
// parent in lines on stdout and stop when their stdin closes.
const childEnv = "CONCURRY_UNIXSOCK_CHILD"

// Limits of the shared set the hammer children use.
const (
	hammerCalls = 300 // CallLimit capacity: the bound on admissions in total
	hammerConns = 3   // ResourceLimit capacity: the bound on holders at once
)

func hammerLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.CallLimit{Window: 1000 * time.Hour, Capacity: hammerCalls, Algorithm: concurry.SlidingWindow},
		concurry.ResourceLimit{Key: "conn", Capacity: hammerConns},
	}
}

// hammerReport is what a hammer child prints.
type hammerReport struct {
	Granted   int
	Intervals [][2]int64 // Unix ns from a grant to just before its release
}

func runChild() int {
	roles := map[string]func() error{
		"hammer": childHammer, "hold": childHold, "worker": childWorker, "dial": childDial, "serve": childServe,
		"echo": childEcho, "paused": childPaused, "keyed": childKeyed,
	}
	role, ok := roles[os.Getenv(childEnv)]
	if !ok {
		fmt.Fprintln(os.Stderr, "unknown child role", os.Getenv(childEnv))
		return 2
	}
	if err := role(); err != nil {
		fmt.Fprintln(os.Stderr, "child:", err)
		return 1
	}
	return 0
}

func childClient() (*Client, error) {
	return Dial(os.Getenv("CQ_SOCK"), Options{DisableAutoHost: os.Getenv("CQ_NOHOST") != "", Server: ServerOptions{Logger: testLogger()}})
}

// openRetrying opens the set, retrying while the server is unreachable
// (another child may be starting it).
func openRetrying(c *Client, limits []concurry.Limit) (*concurry.LimitSet, error) {
	deadline := time.Now().Add(10 * time.Second)
	for {
		ls, err := concurry.NewLimitSet(limits, concurry.WithName(os.Getenv("CQ_NAME")), concurry.WithBackend(c))
		if err == nil || !errors.Is(err, backend.ErrBackendUnavailable) || time.Now().After(deadline) {
			return ls, err
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// childHammer acquires from 8 goroutines until the call limit is spent,
// holding each grant briefly, and reports every holding interval.
func childHammer() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := openRetrying(c, hammerLimits())
	if err != nil {
		return err
	}
	var mu sync.Mutex
	var rep hammerReport
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for range 8 {
		wg.Go(func() {
			for {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				a, err := ls.Acquire(ctx, nil)
				cancel()
				if errors.Is(err, context.DeadlineExceeded) {
					return // the call limit is spent
				}
				if err != nil {
					errs <- err
					return
				}
				t1 := time.Now().UnixNano()
				time.Sleep(100 * time.Microsecond) // the work done while holding
				t2 := time.Now().UnixNano()
				a.Release()
				mu.Lock()
				rep.Granted++
				rep.Intervals = append(rep.Intervals, [2]int64{t1, t2})
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	out, _ := json.Marshal(rep)
	fmt.Printf("RESULT %s\n", out)
	io.Copy(io.Discard, os.Stdin) // keep serving (if hosting) until the parent says stop
	return nil
}

// childHold takes every unit of the resource, says HELD, and waits to be killed.
func childHold() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := openRetrying(c, []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 2}})
	if err != nil {
		return err
	}
	if _, err := ls.Acquire(context.Background(), concurry.Amounts{"conn": 2}); err != nil {
		return err
	}
	fmt.Println("HELD")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// childWorker cycles on a resource until stdin closes, riding out server
// loss, and prints its state every 20ms.
func childWorker() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := openRetrying(c, []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}})
	if err != nil {
		return err
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { io.Copy(io.Discard, os.Stdin); cancel() }()
	cycles, failures := 0, 0
	next := time.Now()
	for ctx.Err() == nil {
		if a, err := ls.Acquire(ctx, nil); err == nil {
			a.Release()
			cycles++
		} else if errors.Is(err, backend.ErrBackendUnavailable) {
			failures++
			time.Sleep(2 * time.Millisecond)
		} else if ctx.Err() == nil {
			return err
		}
		if time.Now().After(next) {
			fmt.Printf("STATUS hosting=%t cycles=%d failures=%d\n", c.Hosting(), cycles, failures)
			next = time.Now().Add(20 * time.Millisecond)
		}
	}
	return nil
}

// childDial opens a set and prints the outcome (run under another uid).
func childDial() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	_, err = concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("uid-test"), concurry.WithBackend(c))
	fmt.Printf("DIAL denied=%t unavailable=%t err=%v\n",
		errors.Is(err, ErrPermissionDenied), errors.Is(err, backend.ErrBackendUnavailable), err)
	return nil
}

// childServe runs a server at CQ_SOCK until stdin closes, and says SERVING.
// CQ_NOFILE lowers its limit of open files; CQ_ALLOW_UID admits a uid (and
// makes the socket 0666); CQ_CPUPROFILE names a file for its CPU profile.
// Its log goes to stdout, as lines "LOG ...".
func childServe() error {
	opts := ServerOptions{Logger: slog.New(slog.NewTextHandler(prefixWriter{os.Stdout}, nil))}
	if uid := os.Getenv("CQ_ALLOW_UID"); uid != "" {
		id, err := strconv.Atoi(uid)
		if err != nil {
			return err
		}
		opts.AllowUIDs, opts.Mode = []int{id}, 0o666
	}
	if n := os.Getenv("CQ_NOFILE"); n != "" {
		limit, err := strconv.ParseUint(n, 10, 64)
		if err != nil {
			return err
		}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &syscall.Rlimit{Cur: limit, Max: limit}); err != nil {
			return err
		}
	}
	srv, err := Listen(os.Getenv("CQ_SOCK"), opts)
	if err != nil {
		return err
	}
	defer srv.Close()
	if path := os.Getenv("CQ_CPUPROFILE"); path != "" { // the server's side of a benchmark
		f, err := os.Create(path)
		if err != nil {
			return err
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			return err
		}
		defer pprof.StopCPUProfile()
	}
	fmt.Println("SERVING")
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// prefixWriter writes each log line to w with "LOG " in front.
type prefixWriter struct{ w io.Writer }

func (p prefixWriter) Write(b []byte) (int, error) {
	if _, err := p.w.Write(append([]byte("LOG "), b...)); err != nil {
		return 0, err
	}
	return len(b), nil
}

// child is a running child process.
type child struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	lines chan string
}

// startChild runs this test binary (or exe, when not empty) in the role.
func startChild(t testing.TB, exe, role string, attr *syscall.SysProcAttr, env ...string) *child {
	t.Helper()
	if exe == "" {
		exe = os.Args[0]
	}
	cmd := exec.Command(exe, "-test.run=^$")
	cmd.Env = append(os.Environ(), append([]string{childEnv + "=" + role}, env...)...)
	cmd.Stderr = os.Stderr
	cmd.SysProcAttr = attr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	c := &child{cmd: cmd, stdin: stdin, lines: make(chan string, 1024)}
	go func() {
		defer close(c.lines)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(nil, 16<<20)
		for sc.Scan() {
			c.lines <- sc.Text()
		}
	}()
	t.Cleanup(func() { c.stop(true) })
	return c
}

// expect returns the next line that starts with prefix, without the prefix.
func (c *child) expect(t testing.TB, prefix string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line, ok := <-c.lines:
			if !ok {
				t.Fatalf("child %d exited before printing %q", c.cmd.Process.Pid, prefix)
			}
			if rest, found := strings.CutPrefix(line, prefix); found {
				return strings.TrimSpace(rest)
			}
		case <-deadline:
			t.Fatalf("child %d printed no %q within %v", c.cmd.Process.Pid, prefix, timeout)
		}
	}
}

// stop closes the child's stdin (or kills it) and waits for it to exit.
func (c *child) stop(kill bool) error {
	if kill {
		c.cmd.Process.Kill()
	}
	c.stdin.Close()
	for range c.lines {
	}
	return c.cmd.Wait()
}

// childEcho listens at CQ_SOCK, says SERVING, and echoes every byte of every
// connection until stdin closes: the peer of BenchmarkEcho, a separate
// process as the server of the other benchmarks is.
func childEcho() error {
	os.Remove(os.Getenv("CQ_SOCK"))
	ln, err := net.Listen("unix", os.Getenv("CQ_SOCK"))
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				io.Copy(c, c)
			}()
		}
	}()
	fmt.Println("SERVING")
	io.Copy(io.Discard, os.Stdin)
	return ln.Close()
}
