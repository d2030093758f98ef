package unixsock

import (
	"context"
	"encoding/json"
	"errors"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// TestMultiProcessBounds has four processes hammer one shared set, and checks
// from their reports that together they were admitted exactly the call limit
// and never held more than the resource limit at once.
func TestMultiProcessBounds(t *testing.T) {
	for _, mode := range []string{"parent-serves", "auto-host"} {
		t.Run(mode, func(t *testing.T) {
			path := sockPath(t)
			env := []string{"CQ_SOCK=" + path, "CQ_NAME=hammer"}
			if mode == "parent-serves" {
				srv, err := Listen(path, ServerOptions{Logger: testLogger()})
				if err != nil {
					t.Fatal(err)
				}
				defer srv.Close()
				env = append(env, "CQ_NOHOST=1")
			}
			var kids []*child
			for range 4 {
				kids = append(kids, startChild(t, "", "hammer", nil, env...))
			}
			var reps []hammerReport
			for _, k := range kids {
				var rep hammerReport
				if err := json.Unmarshal([]byte(k.expect(t, "RESULT ", 60*time.Second)), &rep); err != nil {
					t.Fatal(err)
				}
				reps = append(reps, rep)
			}
			for _, k := range kids {
				if err := k.stop(false); err != nil {
					t.Errorf("child exited with %v", err)
				}
			}
			checkBounds(t, reps)
		})
	}
}

func checkBounds(t *testing.T, reps []hammerReport) {
	t.Helper()
	type event struct {
		at    int64
		delta int
	}
	var events []event
	total := 0
	for i, r := range reps {
		t.Logf("process %d: %d admitted", i, r.Granted)
		total += r.Granted
		for _, iv := range r.Intervals {
			events = append(events, event{iv[0], +1}, event{iv[1], -1})
		}
	}
	if total != hammerCalls {
		t.Errorf("%d admitted in total, want exactly the call limit %d", total, hammerCalls)
	}
	slices.SortFunc(events, func(a, b event) int {
		if a.at != b.at {
			return int(a.at - b.at)
		}
		return a.delta - b.delta // releases before grants at the same instant
	})
	held, peak := 0, 0
	for _, e := range events {
		held += e.delta
		peak = max(peak, held)
	}
	if peak > hammerConns {
		t.Errorf("%d holders at once across processes, the limit is %d", peak, hammerConns)
	}
	t.Logf("%d admitted, at most %d held at once (limit %d)", total, peak, hammerConns)
}

// TestKillHolder kills -9 a process that holds every unit of a resource: the
// units must reach a waiter in another process within 100ms.
func TestKillHolder(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	kid := startChild(t, "", "hold", nil, "CQ_SOCK="+srv.Path(), "CQ_NAME=held", "CQ_NOHOST=1")
	kid.expect(t, "HELD", 10*time.Second)
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 2}},
		concurry.WithName("held"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ls.TryAcquire(context.Background(), nil); !errors.Is(err, concurry.ErrWouldBlock) {
		t.Fatalf("the child's units are free before it died: %v", err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	got := make(chan error, 1)
	var waited time.Duration
	killed := time.Now()
	go func() {
		a, err := ls.Acquire(ctx, concurry.Amounts{"conn": 2})
		waited = time.Since(killed)
		if err == nil {
			err = a.Release()
		}
		got <- err
	}()
	if err := kid.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	if err := <-got; err != nil {
		t.Fatal(err)
	}
	if waited > 100*time.Millisecond {
		t.Fatalf("the dead holder's units took %v to come back", waited)
	}
	t.Logf("units of the killed process available after %v", waited)
}

// TestAutoHostTakeover kills the process that hosts the server: another
// process takes over and every survivor keeps working.
func TestAutoHostTakeover(t *testing.T) {
	path := sockPath(t)
	var kids []*child
	for range 3 {
		kids = append(kids, startChild(t, "", "worker", nil, "CQ_SOCK="+path, "CQ_NAME=takeover"))
	}
	host := -1
	for host < 0 {
		for i, k := range kids {
			if strings.Contains(k.expect(t, "STATUS ", 10*time.Second), "hosting=true") {
				host = i
			}
		}
	}
	if err := kids[host].cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	kids[host].stop(true)
	survivors := slices.Delete(slices.Clone(kids), host, host+1)
	base := make([]int, len(survivors))
	for i, k := range survivors {
		base[i] = cycles(t, k.expect(t, "STATUS ", 10*time.Second))
	}
	newHost := false
	for i, k := range survivors {
		deadline := time.Now().Add(10 * time.Second)
		for {
			st := k.expect(t, "STATUS ", 10*time.Second)
			newHost = newHost || strings.Contains(st, "hosting=true")
			if cycles(t, st) >= base[i]+50 {
				break
			}
			if time.Now().After(deadline) {
				t.Fatalf("survivor %d made no progress after the host died: %s", i, st)
			}
		}
	}
	for !newHost {
		newHost = strings.Contains(survivors[0].expect(t, "STATUS ", 10*time.Second), "hosting=true") ||
			strings.Contains(survivors[1].expect(t, "STATUS ", 10*time.Second), "hosting=true")
	}
	for _, k := range survivors {
		if err := k.stop(false); err != nil {
			t.Errorf("survivor exited with %v", err)
		}
	}
}

func cycles(t *testing.T, status string) int {
	t.Helper()
	for f := range strings.FieldsSeq(status) {
		if v, ok := strings.CutPrefix(f, "cycles="); ok {
			var n int
			if err := json.Unmarshal([]byte(v), &n); err != nil {
				t.Fatal(err)
			}
			return n
		}
	}
	t.Fatalf("no cycles in %q", status)
	return 0
}
