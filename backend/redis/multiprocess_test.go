package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// The multi-host simulation re-executes the test binary: a child runs
// runChild instead of the tests, with its own go-redis client.
const (
	childEnv   = "CONCURRY_REDIS_CHILD" // "hammer", "hold", "stall", "feedback-wait", "feedback-lower", "keyed" or "http"
	addrEnv    = "CONCURRY_REDIS_ADDR"
	nameEnv    = "CONCURRY_REDIS_NAME"
	calls      = 120                    // the call limit shared by every process
	slots      = 2                      // the resource shared by every process
	childTTL   = 600 * time.Millisecond // short leases, so a killed holder's come back fast
	inUseKey   = "multiprocess:inuse"   // a plain counter the children keep of slots held
	holdingMsg = "HOLDING"
)

func sharedLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.CallLimit{Window: time.Hour, Capacity: calls, Algorithm: concurry.SlidingWindow},
		concurry.ResourceLimit{Key: "slot", Capacity: slots},
	}
}

// runChild is a child process's main: it prints its result and returns its
// exit code.
func runChild(mode string) int {
	switch mode {
	case "keyed":
		return runKeyedChild()
	case "http":
		return runHTTPChild()
	}
	client := redis.NewClient(&redis.Options{Addr: os.Getenv(addrEnv)})
	defer client.Close()
	switch {
	case mode == "stall":
		return runStalled(client)
	case strings.HasPrefix(mode, "feedback"):
		return runFeedbackChild(mode, client)
	}
	ls, err := concurry.NewLimitSet(sharedLimits(), concurry.WithName(os.Getenv(nameEnv)),
		concurry.WithBackend(cr.New(client, cr.Options{LeaseTTL: childTTL})))
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	defer ls.Close()
	if mode == "hold" {
		if _, err := ls.Acquire(context.Background(), concurry.Amounts{"slot": slots}); err != nil {
			fmt.Println("error", err)
			return 1
		}
		fmt.Println(holdingMsg)
		select {} // until killed
	}
	granted, peak, err := hammer(client, ls)
	if err != nil {
		fmt.Println("error", err)
		return 1
	}
	fmt.Println("granted", granted, "peak", peak)
	return 0
}

// hammer acquires until the call limit is spent and reports its grants and
// the most slots it saw held across processes.
func hammer(client *redis.Client, ls *concurry.LimitSet) (granted, peak int64, err error) {
	ctx := context.Background()
	for {
		actx, cancel := context.WithTimeout(ctx, 5*time.Second)
		a, err := ls.Acquire(actx, nil)
		cancel()
		if errors.Is(err, context.DeadlineExceeded) {
			return granted, peak, nil // the window is spent: the next call is an hour away
		}
		if err != nil {
			return granted, peak, err
		}
		granted++
		n, err := client.Incr(ctx, inUseKey).Result()
		if err != nil {
			return granted, peak, err
		}
		peak = max(peak, n)
		time.Sleep(time.Millisecond) // hold the slot a little, so holders overlap
		if err := client.Decr(ctx, inUseKey).Err(); err != nil {
			return granted, peak, err
		}
		if err := a.Release(); err != nil {
			return granted, peak, err
		}
	}
}

// child starts the test binary as a child in mode and returns it with a
// reader of its output.
func child(t *testing.T, mode, addr, name string) (*exec.Cmd, *bufio.Scanner) {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	return cmd, startChild(t, cmd, mode, addr, name)
}

// startChild starts cmd, the test binary, as a child in mode and returns a
// reader of its output; cmd.Env, if set, is added to this process's
// environment. It is killed when the test ends.
func startChild(t *testing.T, cmd *exec.Cmd, mode, addr, name string) *bufio.Scanner {
	t.Helper()
	cmd.Env = append(append(os.Environ(), cmd.Env...), childEnv+"="+mode, addrEnv+"="+addr, nameEnv+"="+name)
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return bufio.NewScanner(out)
}

func TestMultiProcessBound(t *testing.T) {
	srv := redistest.Start(t)
	const procs = 4
	var mu sync.Mutex
	var total, peak int64
	var wg sync.WaitGroup
	for range procs {
		cmd, out := child(t, "hammer", srv.Addr, t.Name())
		wg.Go(func() {
			var granted, p int64
			for out.Scan() {
				if _, err := fmt.Sscanf(out.Text(), "granted %d peak %d", &granted, &p); err != nil {
					t.Errorf("child: %s", out.Text())
				}
			}
			if err := cmd.Wait(); err != nil {
				t.Errorf("child: %v", err)
			}
			mu.Lock()
			total, peak = total+granted, max(peak, p)
			mu.Unlock()
		})
	}
	wg.Wait()
	if total != calls {
		t.Fatalf("%d processes were granted %d calls together, want exactly %d", procs, total, calls)
	}
	if peak > slots || peak < 1 {
		t.Fatalf("%d slots were held at once across processes, capacity %d", peak, slots)
	}
}

func TestKilledHolderLeasesExpire(t *testing.T) {
	srv := redistest.Start(t)
	cmd, out := child(t, "hold", srv.Addr, t.Name())
	if !out.Scan() || strings.TrimSpace(out.Text()) != holdingMsg {
		t.Fatalf("child: %q", out.Text())
	}
	ls, err := concurry.NewLimitSet(sharedLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(srv.Client(), cr.Options{LeaseTTL: childTTL})))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	// The live holder renews: its slots stay held well past one TTL.
	time.Sleep(3 * childTTL)
	if st, err := ls.Stats(context.Background()); err != nil || st.Limits[1].InUse != slots {
		t.Fatalf("a live holder's slots: %+v, %v; want %d in use", st.Limits[1], err, slots)
	}
	if err := cmd.Process.Kill(); err != nil { // SIGKILL: no release, no renewal
		t.Fatal(err)
	}
	killed := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 10*childTTL)
	defer cancel()
	a, err := ls.Acquire(ctx, concurry.Amounts{"slot": slots})
	if err != nil {
		t.Fatalf("the killed holder's slots did not come back: %v", err)
	}
	back := time.Since(killed)
	_ = a.Release()
	if back > childTTL+500*time.Millisecond {
		t.Fatalf("slots came back %v after the kill, lease TTL %v", back, childTTL)
	}
	t.Logf("slots came back %v after kill -9 (lease TTL %v)", back, childTTL)
}
