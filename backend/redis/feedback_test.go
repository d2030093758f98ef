package redis_test

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// deadlineEnv is the ctx timeout, in ms, of a feedback child's Acquire.
const deadlineEnv = "CONCURRY_REDIS_DEADLINE"

// feedbackLimits are the limits of the feedback tests: r refills a unit
// every 3 s; tokens never refill during a test.
func feedbackLimits() []concurry.Limit {
	return []concurry.Limit{
		concurry.RateLimit{Key: "r", Window: 3 * time.Second, Capacity: 1},
		concurry.RateLimit{Key: "tokens", Window: 1000 * time.Hour, Capacity: 100},
	}
}

// runFeedbackChild is a feedback child's main. "feedback-wait" acquires a
// unit of r, printing WAITING when it starts to wait, then its outcome:
// "granted <unix ns>" or "error <deadline|other> <unix ns> <err>".
// "feedback-lower" lowers tokens twice, with a stale report and a fresh
// one, and prints "lowered".
func runFeedbackChild(mode string, client *redis.Client) int {
	hooks := concurry.Hooks{WaitStart: func(concurry.WaitInfo) { fmt.Println("WAITING") }}
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName(os.Getenv(nameEnv)),
		concurry.WithBackend(cr.New(client, cr.Options{})), concurry.WithHooks(hooks))
	if err != nil {
		fmt.Println("error other", err)
		return 1
	}
	defer ls.Close()
	if mode == "feedback-lower" {
		now := time.Now()
		if err := ls.Lower(context.Background(), "tokens", 0, now.Add(-time.Hour)); err != nil {
			fmt.Println("error other", err)
			return 1
		}
		if err := ls.Lower(context.Background(), "tokens", 2, now.Add(time.Second)); err != nil {
			fmt.Println("error other", err)
			return 1
		}
		fmt.Println("lowered")
		return 0
	}
	ms, _ := strconv.Atoi(os.Getenv(deadlineEnv))
	ctx, cancel := context.WithTimeout(context.Background(), time.Duration(ms)*time.Millisecond)
	defer cancel()
	a, err := ls.Acquire(ctx, concurry.Amounts{"r": 1})
	switch {
	case err == nil:
		fmt.Println("granted", time.Now().UnixNano())
		_ = a.Update(concurry.Amounts{"r": 1})
		_ = a.Release()
	case errors.Is(err, context.DeadlineExceeded):
		fmt.Println("error deadline", time.Now().UnixNano(), err)
	default:
		fmt.Println("error other", time.Now().UnixNano(), err)
	}
	return 0
}

// feedbackChild starts a feedback child in mode with an Acquire deadline of
// ms and returns its output.
func feedbackChild(t *testing.T, mode, addr, name string, ms int) *bufio.Scanner {
	t.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = []string{deadlineEnv + "=" + strconv.Itoa(ms)}
	return startChild(t, cmd, mode, addr, name)
}

// line returns the next line of a child's output, failing the test at its end.
func line(t *testing.T, out *bufio.Scanner) string {
	t.Helper()
	if !out.Scan() {
		t.Fatalf("child: no more output (%v)", out.Err())
	}
	return strings.TrimSpace(out.Text())
}

// TestPauseAcrossProcesses: two processes wait for a unit of r, due in 3 s;
// a third pauses r for 5 s. The waiter whose deadline (4 s) the pause makes
// unmeetable is told at once, not when its unit was due: the pause's notice
// woke it. The other is granted when the pause ends, not when its unit was
// due.
func TestPauseAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(srv.Client(), cr.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	drained := time.Now()
	a, err := ls.TryAcquire(context.Background(), concurry.Amounts{"r": 1})
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Update(concurry.Amounts{"r": 1}); err != nil {
		t.Fatal(err)
	}
	_ = a.Release()
	late := feedbackChild(t, "feedback-wait", srv.Addr, t.Name(), 4000)
	patient := feedbackChild(t, "feedback-wait", srv.Addr, t.Name(), 20000)
	for _, out := range []*bufio.Scanner{late, patient} {
		if got := line(t, out); got != "WAITING" {
			t.Fatalf("child: %q, want WAITING", got)
		}
	}
	until := time.Now().Add(5 * time.Second)
	if err := ls.Pause(context.Background(), "r", until); err != nil {
		t.Fatal(err)
	}
	paused := time.Now()
	got := line(t, late)
	if !strings.HasPrefix(got, "error deadline") {
		t.Fatalf("the waiter with a deadline before the pause's end: %q, want a deadline error", got)
	}
	if told := time.Since(paused); told > time.Second || time.Since(drained) > 2500*time.Millisecond {
		t.Fatalf("the waiter was told %v after the pause, %v after the drain: not woken by it", told, time.Since(drained))
	}
	got = line(t, patient)
	var at int64
	if _, err := fmt.Sscanf(got, "granted %d", &at); err != nil {
		t.Fatalf("the patient waiter: %q, want granted", got)
	}
	if d := time.Unix(0, at).Sub(until); d < -clockSkew || d > 2*time.Second {
		t.Fatalf("the patient waiter was granted %v after the pause's end", d)
	}
}

// clockSkew is how much earlier than a pause's end a grant may come by this
// process's clock: Redis TIME is another process's.
const clockSkew = 50 * time.Millisecond

// TestLowerAcrossProcesses: one process lowers tokens to 5; another sends a
// stale report (0 left, an hour old), which lowers nothing, then a fresh one
// (2 left), which every process sees.
func TestLowerAcrossProcesses(t *testing.T) {
	srv := redistest.Start(t)
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(srv.Client(), cr.Options{})))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	if err := ls.Lower(context.Background(), "tokens", 5, time.Now()); err != nil {
		t.Fatal(err)
	}
	out := feedbackChild(t, "feedback-lower", srv.Addr, t.Name(), 0)
	if got := line(t, out); got != "lowered" {
		t.Fatalf("child: %q", got)
	}
	st, err := ls.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got := st.Limits[1].Available; got != 2 {
		t.Fatalf("tokens: %d available, want 2 (5, a stale report ignored, then 2)", got)
	}
}

// TestFeedbackTooLate: on Redis a pause that has already ended (by Redis
// time) and a report older than one applied change nothing: the backend
// says so with backend.ErrFeedbackStale, and the set neither counts them in
// Stats' Feedback nor passes them to the Feedback hook.
func TestFeedbackTooLate(t *testing.T) {
	client := redistest.Start(t).Client()
	var hooked int
	hooks := concurry.Hooks{Feedback: func(concurry.FeedbackInfo) { hooked++ }}
	ls, err := concurry.NewLimitSet(feedbackLimits(), concurry.WithName(t.Name()),
		concurry.WithBackend(cr.New(client, cr.Options{})), concurry.WithHooks(hooks))
	if err != nil {
		t.Fatal(err)
	}
	defer ls.Close()
	ctx, now := context.Background(), time.Now()
	for _, err := range []error{
		ls.Lower(ctx, "tokens", 50, now),
		ls.Pause(ctx, "tokens", now.Add(time.Hour)),
		ls.Pause(ctx, "tokens", now.Add(-time.Second)), // ended before it came
		ls.Lower(ctx, "tokens", 1, now.Add(-time.Second)),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	st, err := ls.Stats(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if c := st.Limits[1].Feedback; hooked != 2 || c != 2 {
		t.Fatalf("hook called %d times, %d counted; want 2 and 2 (the stale report and the ended pause apply nothing)", hooked, c)
	}
	if st.Limits[1].Available != 0 { // paused
		t.Fatalf("available %d during the pause, want 0", st.Limits[1].Available)
	}
}
