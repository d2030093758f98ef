package unixsock

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"testing"
	"time"

	"github.com/concurry/concurry"
)

// feedbackLimits are the limits of the set the feedback children share: a
// call back every 2s.
func feedbackLimits() []concurry.Limit {
	return []concurry.Limit{concurry.CallLimit{Window: 4 * time.Second, Capacity: 2}}
}

// childPaused opens the shared set CQ_NAME and says READY. On each line
// ACQUIRE from stdin it acquires one call, saying WAITING when the request
// queues (the WaitStart hook) and GRANTED with the Unix ns of the grant; on
// TRY it tries once and says what refused it.
func childPaused() error {
	c, err := childClient()
	if err != nil {
		return err
	}
	defer c.Close()
	hooks := concurry.Hooks{WaitStart: func(w concurry.WaitInfo) { fmt.Printf("WAITING key=%s\n", w.Key) }}
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName(os.Getenv("CQ_NAME")),
		concurry.WithBackend(c), concurry.WithHooks(hooks))
	if err != nil {
		return err
	}
	fmt.Println("READY")
	lines := bufio.NewScanner(os.Stdin)
	for lines.Scan() {
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		switch lines.Text() {
		case "ACQUIRE":
			a, err := ls.Acquire(ctx, nil)
			if err != nil {
				cancel()
				return err
			}
			fmt.Printf("GRANTED %d\n", time.Now().UnixNano())
			a.Release()
		case "TRY":
			_, err := ls.TryAcquire(ctx, nil)
			var r *concurry.RefusalError
			errors.As(err, &r)
			fmt.Printf("TRY refused=%t key=%s\n", r != nil, refusalKey(r))
		}
		cancel()
	}
	return lines.Err()
}

func refusalKey(r *concurry.RefusalError) string {
	if r == nil {
		return ""
	}
	return r.Key
}

// TestFeedbackSharedByProcesses: a 429 seen by one process pauses every
// process: two other processes wait on the shared set (each for a call to
// come back, which would take 2s and 4s), one process pauses the set for
// 3s, and neither waiter is granted before the pause ends. A TryAcquire
// during the pause says to retry no sooner than it ends, and a Lower by one process
// leaves nothing to the others.
func TestFeedbackSharedByProcesses(t *testing.T) {
	srv := startServer(t, ServerOptions{})
	c := dial(t, srv.Path(), Options{DisableAutoHost: true})
	ctx := context.Background()
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName("upstream"), concurry.WithBackend(c))
	if err != nil {
		t.Fatal(err)
	}
	for range 2 { // spend both calls
		a, err := ls.TryAcquire(ctx, nil)
		if err != nil {
			t.Fatal(err)
		}
		a.Release()
	}
	var kids []*child
	for range 2 {
		kid := startChild(t, "", "paused", nil, "CQ_SOCK="+srv.Path(), "CQ_NAME=upstream", "CQ_NOHOST=1")
		kid.expect(t, "READY", 10*time.Second)
		kids = append(kids, kid)
	}
	for _, kid := range kids {
		io.WriteString(kid.stdin, "ACQUIRE\n")
		if got := kid.expect(t, "WAITING", 10*time.Second); got != "key=call_count" {
			t.Fatalf("a waiter in another process reports %q, want the key that blocks it", got)
		}
	}
	until := time.Now().Add(3 * time.Second)
	if err := ls.Pause(ctx, "", until); err != nil {
		t.Fatal(err)
	}
	_, err = ls.TryAcquire(ctx, nil)
	var refusal *concurry.RefusalError
	if left := time.Until(until); !errors.As(err, &refusal) || refusal.RetryAfter < left {
		t.Errorf("TryAcquire during the pause: %v, want a refusal that says to retry after the %v the pause lasts", err, left)
	}
	for i, kid := range kids {
		at, err := strconv.ParseInt(kid.expect(t, "GRANTED ", 20*time.Second), 10, 64)
		if err != nil {
			t.Fatal(err)
		}
		if early := until.UnixNano() - at; early > 0 {
			t.Errorf("process %d was granted %v before the pause ended", i, time.Duration(early))
		}
	}
	if err := ls.Lower(ctx, concurry.CallKey, 0, time.Now()); err != nil {
		t.Fatal(err)
	}
	io.WriteString(kids[0].stdin, "TRY\n")
	if got := kids[0].expect(t, "TRY ", 10*time.Second); got != "refused=true key=call_count" {
		t.Errorf("another process after Lower to 0: %q, want a refusal by call_count", got)
	}
}
