package redis_test

// Edge probes (an outside audit, 1 December) of the short form of a set's
// parameters (NOSPEC), the background retries of settles and give-backs,
// the acquire/check argument layout, and the hand-built commands.

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/algorithms"
	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
)

// auditHook is a go-redis hook that, armed with a function name, empties
// the server's cache of parsed parameters (reset) right before the next
// FCALL of that function is sent, so that exactly that call meets a cold
// library; it counts NOSPEC replies per function and records every other
// error reply of an FCALL, EVAL or EVALSHA.
type auditHook struct {
	mu     sync.Mutex
	arm    string
	reset  func()
	nospec map[string]int
	calls  map[string]int // FCALLs sent, by function
	evals  int            // EVAL/EVALSHA sent
	errs   []string
}

func newAuditHook(reset func()) *auditHook {
	return &auditHook{reset: reset, nospec: map[string]int{}, calls: map[string]int{}}
}

func (h *auditHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *auditHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *auditHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		args := cmd.Args()
		name, _ := args[0].(string)
		name = strings.ToLower(name)
		fn := ""
		if name == "fcall" && len(args) > 1 {
			fn, _ = args[1].(string)
		}
		h.mu.Lock()
		fire := fn != "" && h.arm == fn
		if fire {
			h.arm = ""
		}
		h.mu.Unlock()
		if fire {
			h.reset()
		}
		err := next(ctx, cmd)
		h.mu.Lock()
		defer h.mu.Unlock()
		switch {
		case fn != "":
			h.calls[fn]++
		case name == "eval" || name == "evalsha":
			h.evals++
		default:
			return err
		}
		var rerr redis.Error
		switch {
		case err == nil:
		case strings.HasPrefix(err.Error(), "NOSPEC"):
			h.nospec[fn]++
		case strings.Contains(err.Error(), "Function not found"), strings.HasPrefix(err.Error(), "NOSCRIPT"), strings.HasPrefix(err.Error(), "NOPERM"):
		case errors.As(err, &rerr):
			h.errs = append(h.errs, name+" "+fn+": "+err.Error())
		}
		return err
	}
}

func (h *auditHook) arming(name string) {
	h.mu.Lock()
	defer h.mu.Unlock()
	h.arm = cr.FunctionName(name)
}

func (h *auditHook) nospecs(name string) int {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.nospec[cr.FunctionName(name)]
}

func (h *auditHook) errors() []string {
	h.mu.Lock()
	defer h.mu.Unlock()
	return append([]string(nil), h.errs...)
}

// emptyLibraryCache replaces the server's function libraries by themselves
// (FUNCTION DUMP, then RESTORE … REPLACE): the library is there, but a new
// instance of it, with no parsed parameters.
func emptyLibraryCache(t *testing.T, c redis.UniversalClient) {
	t.Helper()
	ctx := context.Background()
	dump, err := c.FunctionDump(ctx).Result()
	if err != nil {
		t.Error("FUNCTION DUMP:", err)
		return
	}
	if err := c.Do(ctx, "FUNCTION", "RESTORE", dump, "REPLACE").Err(); err != nil {
		t.Error("FUNCTION RESTORE:", err)
	}
}

func auditSpecs() []backend.Spec {
	return []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: 1000}, // 1 token an hour
		{Key: "win", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: 1000 * time.Hour, Capacity: 1000},
		{Key: "slot", Kind: backend.Resource, Capacity: 5},
	}
}

func statsOf(t *testing.T, set backend.Set) []backend.SpecStats {
	t.Helper()
	st, err := set.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return st
}

// wantStats fails unless tokens and win have avail available and slot has
// inUse units held.
func wantStats(t *testing.T, what string, set backend.Set, tokens, win, inUse int64) {
	t.Helper()
	st := statsOf(t, set)
	if st[0].Available != tokens || st[1].Available != win || st[2].InUse != inUse {
		t.Errorf("%s: tokens %d win %d slot in use %d; want %d %d %d", what,
			st[0].Available, st[1].Available, st[2].InUse, tokens, win, inUse)
	}
}

// everyEntryWithColdCache runs every entry point of the library once with
// the server's cache emptied (by reset) right before its call, and checks
// that each succeeded and applied exactly what it should.
func everyEntryWithColdCache(t *testing.T, client redis.UniversalClient, reset func(), wantNospec bool) *auditHook {
	hook := newAuditHook(reset)
	client.AddHook(hook)
	rec := newLogRecorder()
	b := cr.New(client, cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, auditSpecs()...)
	ctx := context.Background()
	acquireAndSettle(t, set, 3) // library loaded, definition stored: 999 999
	step := func(entry string, f func()) {
		t.Helper()
		before := hook.nospecs(entry)
		hook.arming(entry)
		f()
		if wantNospec && hook.nospecs(entry) == before {
			t.Errorf("%s: its call met no NOSPEC (the probe did not reach a cold cache)", entry)
		}
	}

	var lease backend.Lease
	step("acquire", func() {
		var err error
		lease, err = set.Acquire(ctx, []int64{10, 10, 1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatal("acquire:", err)
		}
	})
	step("stats", func() { wantStats(t, "stats", set, 989, 989, 1) })
	step("renew", func() {
		cr.RenewNow(set)
		if f := set.(backend.FaultCounter).Faults(); f.RenewFailures != 0 || f.LeasesLost != 0 {
			t.Errorf("renew: faults %+v", f)
		}
		if err := set.(backend.LeaseChecker).CheckLease(lease); err != nil {
			t.Errorf("renew: CheckLease %v", err)
		}
	})
	step("check", func() {
		d, err := cr.ReadyIn(ctx, set, []int64{1, 1, 1})
		if err != nil || d != 0 {
			t.Errorf("check: %v %v, want 0 <nil>", d, err)
		}
	})
	step("lower", func() {
		if err := set.(backend.Feedback).Lower(ctx, 0, 900, time.Now().UnixNano()); err != nil {
			t.Errorf("lower: %v", err)
		}
	})
	wantStats(t, "after lower", set, 900, 989, 1)
	step("settle", func() {
		refunded := make([]int64, 3)
		if err := set.Settle(ctx, lease, []int64{10, 10, 1}, []int64{5, 5, 0}, true, refunded); err != nil {
			t.Errorf("settle: %v", err)
		}
	})
	wantStats(t, "after settle", set, 895, 984, 0)
	id := backend.Lease(0x5eed1234)
	ok, p, err := cr.TakeWithHint(ctx, set, id, []int64{2, 2, 1}, -1)
	if err != nil || !ok {
		t.Fatalf("take: %v %v", ok, err)
	}
	wantStats(t, "after take", set, 893, 982, 1)
	step("undo", func() { cr.Undo(set, id, []int64{2, 2, 1}, p) })
	wantStats(t, "after undo", set, 895, 984, 0)
	rec.mu.Lock()
	for _, l := range rec.lines {
		if strings.Contains(l, "could not be given back") || strings.Contains(l, "gave up") {
			t.Errorf("log: %s", l)
		}
	}
	rec.mu.Unlock()

	// project: a head waiter (the slots all held) and a request behind it
	// with a deadline, which projects its wait through the head.
	full := backend.Lease(0x5eed5678)
	if ok, err := cr.TakeWithID(ctx, set, full, []int64{0, 0, 5}); err != nil || !ok {
		t.Fatalf("take the slots: %v %v", ok, err)
	}
	hctx, hcancel := context.WithCancel(ctx)
	waiting := make(chan struct{})
	headDone := make(chan error, 1)
	go func() {
		_, err := set.Acquire(hctx, []int64{0, 0, 1}, backend.AcquireOptions{Wait: true, OnWait: func(int) { close(waiting) }})
		headDone <- err
	}()
	select {
	case <-waiting:
	case err := <-headDone:
		t.Fatalf("head waiter: %v", err)
	case <-time.After(10 * time.Second):
		t.Fatal("the head waiter did not start to wait")
	}
	step("project", func() {
		pctx, pcancel := context.WithTimeout(ctx, 300*time.Millisecond)
		defer pcancel()
		_, err := set.Acquire(pctx, []int64{1, 0, 1}, backend.AcquireOptions{Wait: true})
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Errorf("project: the request behind a waiter ended with %v, want DeadlineExceeded", err)
		}
	})
	hcancel()
	<-headDone
	cr.Undo(set, full, []int64{0, 0, 5}, 0)

	step("pause", func() {
		if err := set.(backend.Feedback).Pause(ctx, 1, time.Now().Add(time.Hour).UnixNano()); err != nil {
			t.Errorf("pause: %v", err)
		}
	})
	wantStats(t, "after pause", set, 895, 0, 0)
	if errs := hook.errors(); len(errs) > 0 {
		t.Errorf("error replies: %q", errs)
	}
	if cr.UsesScripts(b) == wantNospec {
		t.Errorf("uses scripts: %v", cr.UsesScripts(b))
	}
	return hook
}

// TestEdgeNospecEveryEntry: every entry point (acquire, stats, renew,
// check, lower, settle, undo, project, pause) meets a library that does not
// know the set's short form (after FUNCTION FLUSH, and after the library
// was replaced by itself), and still succeeds, applying exactly once.
func TestEdgeNospecEveryEntry(t *testing.T) {
	t.Run("flush", func(t *testing.T) {
		srv := redistest.Start(t)
		admin := srv.Client()
		everyEntryWithColdCache(t, srv.Client(), func() { admin.FunctionFlush(context.Background()) }, true)
	})
	t.Run("restore", func(t *testing.T) {
		srv := redistest.Start(t)
		admin := srv.Client()
		everyEntryWithColdCache(t, srv.Client(), func() { emptyLibraryCache(t, admin) }, true)
	})
}

// TestEdgeScriptsEveryEntry: with FCALL and FUNCTION forbidden by
// an ACL, every entry point runs as a script (whole parameters) and
// applies exactly once; no FCALL is sent after the fallback.
func TestEdgeScriptsEveryEntry(t *testing.T) {
	srv := redistest.Start(t)
	ctx := context.Background()
	admin := srv.Client()
	if err := admin.Do(ctx, "ACL", "SETUSER", "nofunc", "on", "nopass", "~*", "&*", "+@all", "-function", "-fcall", "-fcall_ro").Err(); err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, Username: "nofunc", Password: "any"})
	t.Cleanup(func() { client.Close() })
	hook := everyEntryWithColdCache(t, client, func() { admin.ScriptFlush(ctx) }, false)
	hook.mu.Lock()
	defer hook.mu.Unlock()
	fcalls := 0
	for _, n := range hook.calls {
		fcalls += n
	}
	if fcalls != 1 || hook.evals == 0 {
		t.Errorf("%d FCALLs (want 1: the one refused), %d scripts run", fcalls, hook.evals)
	}
}

// TestEdgeClusterOneMasterFlushed: in a Redis Cluster whose sets
// spread over the masters, one master loses its library (FUNCTION FLUSH);
// every set's calls still succeed, each counted once.
func TestEdgeClusterOneMasterFlushed(t *testing.T) {
	c := redistest.StartCluster(t)
	client := c.Client()
	ctx := context.Background()
	hook := newAuditHook(nil)
	client.AddHook(hook)
	b := cr.New(client, cr.Options{})
	const sets = 24
	var all []backend.Set
	for i := range sets {
		s, err := b.Open(ctx, fmt.Sprintf("%s/%d", t.Name(), i), auditSpecs())
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		all = append(all, s)
		acquireAndSettle(t, s, 3)
	}
	var once sync.Once
	err := client.ForEachMaster(ctx, func(ctx context.Context, m *redis.Client) error {
		var err error
		once.Do(func() { err = m.FunctionFlush(ctx).Err() })
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range all {
		acquireAndSettle(t, s, 3)
		lease, err := s.Acquire(ctx, []int64{2, 2, 1}, backend.AcquireOptions{})
		if err != nil {
			t.Fatalf("set %d: %v", i, err)
		}
		if err := s.Settle(ctx, lease, []int64{2, 2, 1}, []int64{1, 1, 0}, true, nil); err != nil {
			t.Fatalf("set %d settle: %v", i, err)
		}
		wantStats(t, fmt.Sprintf("set %d", i), s, 1000-5, 1000-5, 0)
	}
	if errs := hook.errors(); len(errs) > 0 {
		t.Errorf("error replies: %q", errs)
	}
	if hook.nospecs("acquire")+hook.nospecs("settle") == 0 {
		t.Errorf("no NOSPEC: the reloaded library's cache was never cold")
	}
	if cr.UsesScripts(b) {
		t.Errorf("the backend fell back to scripts")
	}
}

// TestEdgeNospecStorm: goroutines cycle through more distinct
// definitions than the library keeps (256), so that its cache is emptied
// again and again while calls are in flight; every call succeeds and every
// set is charged exactly what was used (a resent call is never counted
// twice).
func TestEdgeNospecStorm(t *testing.T) {
	srv := redistest.Start(t)
	client := srv.Client()
	hook := newAuditHook(nil)
	client.AddHook(hook)
	ctx := context.Background()
	b := cr.New(client, cr.Options{})
	const workers, perWorker, rounds = 8, 45, 3 // 360 definitions
	sets := make([][]backend.Set, workers)
	for w := range workers {
		for j := range perWorker {
			i := w*perWorker + j
			s, err := b.Open(ctx, fmt.Sprintf("%s/%d", t.Name(), i), []backend.Spec{
				{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: int64(1000 + i)},
				{Key: "slot", Kind: backend.Resource, Capacity: 3},
			})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			sets[w] = append(sets[w], s)
		}
	}
	var wg sync.WaitGroup
	errs := make(chan error, workers)
	for w := range workers {
		wg.Go(func() {
			for range rounds {
				for _, s := range sets[w] {
					lease, err := s.Acquire(ctx, []int64{3, 1}, backend.AcquireOptions{})
					if err != nil {
						errs <- err
						return
					}
					if err := s.Settle(ctx, lease, []int64{3, 1}, []int64{2, 0}, true, nil); err != nil {
						errs <- err
						return
					}
					unleasedLease, err := s.Acquire(ctx, []int64{1, 0}, backend.AcquireOptions{})
					if err != nil {
						errs <- err
						return
					}
					if err := s.Settle(ctx, unleasedLease, []int64{1, 0}, []int64{1, 0}, true, nil); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for w := range workers {
		for j, s := range sets[w] {
			i := w*perWorker + j
			st := statsOf(t, s)
			if want := int64(1000+i) - rounds*(5+2); st[0].Available != want || st[1].InUse != 0 {
				t.Errorf("set %d: tokens %d in use %d, want %d 0", i, st[0].Available, st[1].InUse, want)
			}
		}
	}
	if errs := hook.errors(); len(errs) > 0 {
		t.Errorf("error replies: %q", errs[:min(len(errs), 5)])
	}
	hook.mu.Lock()
	n := 0
	for _, v := range hook.nospec {
		n += v
	}
	hook.mu.Unlock()
	if n == 0 {
		t.Errorf("no NOSPEC: the storm did not empty the cache")
	}
	t.Logf("NOSPEC replies: %d", n)
}

// waitBackground waits for the background calls of set (retries
// included), failing the test after timeout.
func waitBackground(t *testing.T, set backend.Set, timeout time.Duration) {
	t.Helper()
	done := make(chan struct{})
	go func() {
		cr.WaitBackground(set)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(timeout):
		t.Fatalf("background calls still running after %v", timeout)
	}
}

func rateAndSlot() []backend.Spec {
	return []backend.Spec{
		{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: 1000}, // 1 token an hour
		{Key: "slot", Kind: backend.Resource, Capacity: 1},
	}
}

// TestEdgeSettleReplyLostChargedOnce: a final Settle reaches a
// stalled Redis (SIGSTOP) and times out: its outcome is unknown, so it is
// retried. Redis then runs the first try too. The usage is charged exactly
// once and the slot comes back; a live lease is not reported lost, and a
// lease that had expired in Redis when the settle arrived (test clock) is
// reported lost once (the retry finds the tombstone).
func TestEdgeSettleReplyLostChargedOnce(t *testing.T) {
	for _, expired := range []bool{false, true} {
		t.Run(fmt.Sprintf("expired=%v", expired), func(t *testing.T) {
			srv := redistest.Start(t)
			rec := newLogRecorder()
			b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
			var mu sync.Mutex
			now := time.Now().UnixMicro()
			if expired {
				cr.SetClock(b, func() int64 { mu.Lock(); defer mu.Unlock(); return now })
			}
			set := open(t, b, rateAndSlot()...)
			ctx := context.Background()
			lease, err := set.Acquire(ctx, []int64{100, 1}, backend.AcquireOptions{})
			if err != nil {
				t.Fatal(err)
			}
			var lost int64
			if expired {
				mu.Lock()
				now += (31 * time.Second).Microseconds()
				mu.Unlock()
				lost = 1
			}
			srv.Pause()
			err = set.Settle(ctx, lease, []int64{100, 1}, []int64{200, 0}, true, nil)
			srv.Resume()
			if !errors.Is(err, concurry.ErrBackendUnavailable) {
				t.Fatalf("Settle on a stalled redis: %v, want ErrBackendUnavailable", err)
			}
			waitBackground(t, set, 15*time.Second)
			st := statsOf(t, set)
			if st[0].Available != 1000-300 || st[1].InUse != 0 {
				t.Errorf("tokens %d, slot in use %d; want %d (300 charged once) and 0", st[0].Available, st[1].InUse, 1000-300)
			}
			if f := set.(backend.FaultCounter).Faults(); f.LeasesLost != lost {
				t.Errorf("faults %+v: want %d leases lost", f, lost)
			}
		})
	}
}

// TestEdgeRetryStopsWhenClientCloses: a settle retried while Redis
// is down stops once the client is closed (goleak checks no goroutine is
// left).
func TestEdgeRetryStopsWhenClientCloses(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	client := quickClient(t, srv.Addr)
	b := cr.New(client, cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, rateAndSlot()...)
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	if err := set.Settle(ctx, lease, []int64{1, 1}, nil, true, nil); !errors.Is(err, concurry.ErrBackendUnavailable) {
		t.Fatalf("Settle with redis down: %v", err)
	}
	client.Close()
	waitBackground(t, set, 5*time.Second)
}

// TestEdgeFailOpenReleaseRetried: under FailOpen a Release while
// Redis is down returns nil and counts a degraded decision; the settle is
// retried, so once Redis is back (from its append-only file) the slot
// returns and the usage is charged once.
func TestEdgeFailOpenReleaseRetried(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Outage: cr.FailOpen})
	set := open(t, b, rateAndSlot()...)
	err := settleWhileDown(t, srv, set)
	if err != nil {
		t.Errorf("FailOpen Settle with redis down: %v, want nil", err)
	}
	if d := set.(backend.DegradedCounter).Degraded(); d == 0 {
		t.Errorf("no degraded decision counted")
	}
	waitBackground(t, set, 15*time.Second)
	st := statsOf(t, set)
	if st[0].Available != 700 || st[1].InUse != 0 {
		t.Errorf("tokens %d, slot in use %d; want 700 (300 charged once) and 0", st[0].Available, st[1].InUse)
	}
}

// TestEdgeUndoRetried: the give-back of a leased grant whose caller
// had gone, made while Redis is down, is retried: once Redis is back the
// slot returns and the tokens are taken back.
func TestEdgeUndoRetried(t *testing.T) {
	srv := redistest.Start(t, "--appendonly", "yes", "--appendfsync", "always")
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, rateAndSlot()...)
	ctx := context.Background()
	id := backend.Lease(0x77aa01)
	ok, p, err := cr.TakeWithHint(ctx, set, id, []int64{100, 1}, -1)
	if err != nil || !ok {
		t.Fatalf("take: %v %v", ok, err)
	}
	srv.Stop()
	cr.Undo(set, id, []int64{100, 1}, p)
	if err := srv.Restart(); err != nil {
		t.Fatal(err)
	}
	waitBackground(t, set, 15*time.Second)
	st := statsOf(t, set)
	if st[0].Available != 1000 || st[1].InUse != 0 {
		t.Errorf("tokens %d, slot in use %d; want 1000 and 0", st[0].Available, st[1].InUse)
	}
	rec.mu.Lock()
	t.Logf("log: %q", rec.lines)
	rec.mu.Unlock()
}

// TestEdgeLateGiveBackSparesOtherLease: the lease of an acquisition
// whose caller gave up while Redis stalled is ended once Redis answers;
// another acquisition's live lease, granted after Redis went on, is not:
// it is still held, renewed and settled as live.
func TestEdgeLateGiveBackSparesOtherLease(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, backend.Spec{Key: "slot", Kind: backend.Resource, Capacity: 2})
	ctx := context.Background()
	acquireAndSettle(t, set, 1)
	abandonWhileStopped(t, srv, set, rec)
	other, err := set.Acquire(ctx, []int64{1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	waitBackground(t, set, 15*time.Second)
	if st := statsOf(t, set); st[0].InUse != 1 {
		t.Errorf("in use %d after the give-back, want 1 (the other lease)", st[0].InUse)
	}
	cr.RenewNow(set)
	if err := set.(backend.LeaseChecker).CheckLease(other); err != nil {
		t.Errorf("the other lease: %v", err)
	}
	if err := set.Settle(ctx, other, []int64{1}, nil, true, nil); err != nil {
		t.Errorf("settle of the other lease: %v", err)
	}
	if st := statsOf(t, set); st[0].InUse != 0 {
		t.Errorf("in use %d at the end, want 0", st[0].InUse)
	}
}

// settleCounter is a go-redis hook that signals every settle call (FCALL,
// EVALSHA or EVAL of the settle entry) that ended in an error.
type settleCounter struct{ failed chan error }

func (h *settleCounter) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h *settleCounter) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
func (h *settleCounter) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		err := next(ctx, cmd)
		if fn, _ := cmd.Args()[1].(string); len(cmd.Args()) > 1 && fn == cr.FunctionName("settle") && err != nil {
			select {
			case h.failed <- err:
			default:
			}
		}
		return err
	}
}

// TestEdgeRetryOutlivesRenewTimeout: a settle retried while Redis
// stalls (SIGSTOP) keeps being retried when a try ends on its
// RenewTimeout bound (here shorter than go-redis's read timeout): it has
// not reached Redis, so it is retried until Redis answers (the doc: "until
// one reaches Redis ... or until is past"), and the slot then comes back
// long before the lease (30 s) expires.
//
// Two configurations: RenewTimeout set below go-redis's ReadTimeout, and
// the defaults of both with a LeaseTTL of 6 s (RenewTimeout = LeaseTTL/3 =
// 2 s, below go-redis's default 3 s read timeout).
func TestEdgeRetryOutlivesRenewTimeout(t *testing.T) {
	t.Run("RenewTimeout", func(t *testing.T) {
		retryOutlivesRenewTimeout(t, &redis.Options{DialTimeout: time.Second,
			ReadTimeout: 2 * time.Second, WriteTimeout: 2 * time.Second, MaxRetries: 1},
			cr.Options{LeaseTTL: 30 * time.Second, RenewTimeout: 100 * time.Millisecond}, 4)
	})
	t.Run("defaults", func(t *testing.T) {
		// A try on a stalled server takes go-redis's timeouts (about 5 s
		// here): resume once the first retry failed, well before the lease
		// TTL after its expiry.
		retryOutlivesRenewTimeout(t, &redis.Options{}, cr.Options{LeaseTTL: 6 * time.Second}, 2)
	})
}

func retryOutlivesRenewTimeout(t *testing.T, copts *redis.Options, opts cr.Options, tries int) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	copts.Addr = srv.Addr
	client := redis.NewClient(copts)
	t.Cleanup(func() { client.Close() })
	hook := &settleCounter{failed: make(chan error, 16)}
	client.AddHook(hook)
	opts.Logger = slog.New(rec)
	b := cr.New(client, opts)
	set := open(t, b, rateAndSlot()...)
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{1, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	sctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	err = set.Settle(sctx, lease, []int64{1, 1}, nil, true, nil)
	cancel()
	if !errors.Is(err, context.DeadlineExceeded) {
		srv.Resume()
		t.Fatalf("Settle with a ctx that ends while redis is stopped: %v", err)
	}
	// The first try fails on go-redis's read timeout; then retries, each
	// bounded by RenewTimeout. Let tries-1 retries fail.
	var seen []string
	deadline := time.After(20 * time.Second)
	for len(seen) < tries {
		select {
		case err := <-hook.failed:
			seen = append(seen, err.Error())
		case line := <-rec.ch:
			if strings.Contains(line, "gave up") {
				srv.Resume()
				t.Fatalf("gave up retrying while redis only stalled, after %d failed tries %q: %s", len(seen), seen, line)
			}
		case <-deadline:
			srv.Resume()
			t.Fatalf("only %d settle tries failed: %q", len(seen), seen)
		}
	}
	srv.Resume()
	waitBackground(t, set, 15*time.Second)
	rec.mu.Lock()
	for _, l := range rec.lines {
		if strings.Contains(l, "gave up") {
			t.Errorf("gave up while redis only stalled: %s", l)
		}
	}
	rec.mu.Unlock()
	if st := statsOf(t, set); st[1].InUse != 0 {
		t.Errorf("slot in use %d once redis answered; want 0 (tries: %q)", st[1].InUse, seen)
	}
}

// TestEdgeUnleasedReplyLostChargedOnce: an acquisition and a settle
// that take no resource (no lease: "once" commands, which go-redis must
// not resend) time out on a stalled Redis (SIGSTOP) and run when it goes
// on: each is applied exactly once, though go-redis may retry (MaxRetries
// 3 here).
func TestEdgeUnleasedReplyLostChargedOnce(t *testing.T) {
	srv := redistest.Start(t)
	client := redis.NewClient(&redis.Options{Addr: srv.Addr, DialTimeout: 100 * time.Millisecond,
		ReadTimeout: 200 * time.Millisecond, WriteTimeout: 200 * time.Millisecond, MaxRetries: 3,
		MinIdleConns: 4})
	t.Cleanup(func() { client.Close() })
	// Connections ready before the stall, so that every call below reaches
	// the server's socket (a new one's handshake would time out first).
	for wait := time.Now().Add(5 * time.Second); client.PoolStats().IdleConns < 4; {
		if time.Now().After(wait) {
			t.Fatalf("pool %+v", client.PoolStats())
		}
		runtime.Gosched()
	}
	hook := newAuditHook(nil)
	client.AddHook(hook)
	b := cr.New(client, cr.Options{})
	set := open(t, b, backend.Spec{Key: "tokens", Kind: backend.Rate, Window: 1000 * time.Hour, Capacity: 1000})
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{10}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Pause()
	_, aerr := set.Acquire(ctx, []int64{7}, backend.AcquireOptions{})
	serr := set.Settle(ctx, lease, []int64{10}, []int64{100}, true, nil)
	srv.Resume()
	if !errors.Is(aerr, concurry.ErrBackendUnavailable) || !errors.Is(serr, concurry.ErrBackendUnavailable) {
		t.Fatalf("acquire %v, settle %v: want ErrBackendUnavailable", aerr, serr)
	}
	waitBackground(t, set, 5*time.Second)
	// Redis runs the calls it buffered once it goes on, on connections it
	// accepts then: poll (bounded) until it has run the acquisition. The
	// settle may not have reached the socket (go-redis failed it on a
	// connection check): then it is not applied, as its error allows.
	deadline := time.Now().Add(5 * time.Second)
	for {
		got := statsOf(t, set)[0].Available
		if got <= 1000-10-7 {
			if got != 1000-10-7 && got != 1000-10-7-100 {
				t.Fatalf("tokens %d, want %d or %d: a call applied twice", got, 1000-10-7, 1000-10-7-100)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("tokens %d: the acquisition never applied", got)
		}
	}
	hook.mu.Lock()
	defer hook.mu.Unlock()
	if n := hook.calls[cr.FunctionName("acquire")]; n != 2 {
		t.Errorf("%d acquire calls sent, want 2 (none resent)", n)
	}
	if n := hook.calls[cr.FunctionName("settle")]; n != 1 {
		t.Errorf("%d settle calls sent, want 1 (none resent)", n)
	}
}

// TestEdgePoolCheckAcrossBackends: a LimitPool over two Redis
// servers waits (check mode, leased requests with a member and a hint) on
// both; the set whose slot is released grants, the other takes nothing.
func TestEdgePoolCheckAcrossBackends(t *testing.T) {
	ctx := context.Background()
	mk := func(region string) *concurry.LimitSet {
		srv := redistest.Start(t)
		b := cr.New(srv.Client(), cr.Options{})
		ls, err := concurry.NewLimitSet([]concurry.Limit{
			concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 1000},
			concurry.ResourceLimit{Key: "slot", Capacity: 1},
		}, concurry.WithName(t.Name()), concurry.WithBackend(b), concurry.WithConfig(map[string]any{"region": region}))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { ls.Close() })
		return ls
	}
	a, b := mk("a"), mk("b")
	holdA, err := a.TryAcquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	holdB, err := b.TryAcquire(ctx, nil)
	if err != nil {
		t.Fatal(err)
	}
	waiting := make(chan struct{}, 1)
	p, err := concurry.NewLimitPool([]*concurry.LimitSet{a, b},
		concurry.WithHooks(concurry.Hooks{WaitStart: func(concurry.WaitInfo) {
			select {
			case waiting <- struct{}{}:
			default:
			}
		}}))
	if err != nil {
		t.Fatal(err)
	}
	wctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	type result struct {
		acq *concurry.Acquisition
		err error
	}
	done := make(chan result, 1)
	go func() {
		acq, err := p.Acquire(wctx, nil)
		done <- result{acq, err}
	}()
	select {
	case <-waiting:
	case r := <-done:
		t.Fatalf("pool granted at once: %v", r.err)
	}
	if err := holdB.Release(); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatalf("pool: %v", r.err)
	}
	if got := r.acq.Config()["region"]; got != "b" {
		t.Errorf("granted by %v, want b", got)
	}
	for ls, want := range map[*concurry.LimitSet][2]int64{a: {999, 1}, b: {998, 1}} {
		st, err := ls.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if st.Limits[0].Available != want[0] || st.Limits[1].InUse != want[1] {
			t.Errorf("%v: calls %d slot %d, want %v", ls.Config()["region"], st.Limits[0].Available, st.Limits[1].InUse, want)
		}
	}
	if err := r.acq.Release(); err != nil {
		t.Error(err)
	}
	if err := holdA.Release(); err != nil {
		t.Error(err)
	}
}

// TestEdgeKeyedManyDefinitionsFlushed: a Keyed whose identities each
// have a definition of their own (more than the library keeps), with the
// library flushed midway, charges every identity exactly.
func TestEdgeKeyedManyDefinitionsFlushed(t *testing.T) {
	srv := redistest.Start(t)
	admin := srv.Client()
	ctx := context.Background()
	k, err := concurry.NewKeyed(concurry.KeyedOptions{Backend: cr.New(srv.Client(), cr.Options{}), Name: t.Name(),
		LimitsFor: func(identity string) ([]concurry.Limit, error) {
			var n int64
			fmt.Sscanf(identity, "u%d", &n)
			return []concurry.Limit{
				concurry.CallLimit{Window: 1000 * time.Hour, Capacity: 100 + n},
				concurry.ResourceLimit{Key: "slot", Capacity: 2},
			}, nil
		}})
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	const ids = 300
	for round := range 3 {
		for i := range ids {
			if i == ids/2 {
				admin.FunctionFlush(ctx)
			}
			a, err := k.TryAcquire(ctx, fmt.Sprintf("u%d", i), nil)
			if err != nil {
				t.Fatalf("round %d u%d: %v", round, i, err)
			}
			if err := a.Release(); err != nil {
				t.Fatalf("round %d u%d release: %v", round, i, err)
			}
		}
	}
	for i := range ids {
		st, err := k.Stats(ctx, fmt.Sprintf("u%d", i))
		if err != nil {
			t.Fatal(err)
		}
		if st.Limits[0].Available != int64(100+i-3) || st.Limits[1].InUse != 0 {
			t.Errorf("u%d: calls %d slot %d, want %d 0", i, st.Limits[0].Available, st.Limits[1].InUse, 100+i-3)
		}
	}
}

// TestEdgeRetriedSettleAfterDataLossIsNotSilent: a Release made while
// Redis is down is told that its usage "is charged as soon as redis
// answers"; Redis comes back without its data (no persistence), so the
// retried settle finds no lease and charges nothing. Every try failed to
// connect (none can have been applied), yet nothing says the usage was
// dropped. DESIGN: "Reported rate usage is charged even then, or the caller
// gets an error saying it was not — never silently dropped."
func TestEdgeRetriedSettleAfterDataLossIsNotSilent(t *testing.T) {
	srv := redistest.Start(t)
	rec := newLogRecorder()
	b := cr.New(quickClient(t, srv.Addr), cr.Options{LeaseTTL: 30 * time.Second, Logger: slog.New(rec)})
	set := open(t, b, rateAndSlot()...)
	err := settleWhileDown(t, srv, set)
	t.Logf("Settle: %v", err)
	waitBackground(t, set, 15*time.Second)
	st := statsOf(t, set)
	t.Logf("after the retry: tokens %d slot %d", st[0].Available, st[1].InUse)
	rec.mu.Lock()
	defer rec.mu.Unlock()
	for _, l := range rec.lines {
		if strings.Contains(l, "not charged") || strings.Contains(l, "lost") {
			return
		}
	}
	t.Errorf("the usage promised to be charged was dropped without a word; log: %q", rec.lines)
}

// decisionTrace runs a fixed sequence of acquisitions (leased and not,
// waiting and not, with and without hints, in check mode) on a test clock
// and returns what each decided, relative to t0.
func decisionTrace(t *testing.T, scripts bool) string {
	client := redistest.Start(t).Client()
	t0 := (time.Now().UnixMicro()/1000000 + 1) * 1000000
	now := t0
	b := cr.New(client, cr.Options{})
	if scripts {
		cr.UseScripts(b)
	}
	cr.SetClock(b, func() int64 { return now })
	set := open(t, b,
		backend.Spec{Key: "k", Kind: backend.Rate, Window: 10 * time.Millisecond, Capacity: 10},
		backend.Spec{Key: "g", Kind: backend.Rate, Algorithm: algorithms.GCRA, Window: 10 * time.Millisecond, Capacity: 5},
		backend.Spec{Key: "w", Kind: backend.Rate, Algorithm: algorithms.SlidingWindow, Window: 10 * time.Millisecond, Capacity: 5},
		backend.Spec{Key: "r", Kind: backend.Resource, Capacity: 2})
	ctx := context.Background()
	var sb strings.Builder
	out := func(format string, a ...any) { fmt.Fprintf(&sb, format+"\n", a...) }
	outcome := func(what string, l backend.Lease, err error) {
		var re *backend.RefusalError
		switch {
		case err == nil:
			out("%s: granted", what)
		case errors.As(err, &re):
			out("%s: refused key=%s after=%v", what, re.Key, re.RetryAfter)
		default:
			out("%s: %v", what, err)
		}
	}
	stats := func() {
		st, err := set.Stats(ctx)
		if err != nil {
			t.Fatal(err)
		}
		out("stats %+v", st)
	}
	acq := func(what string, amounts []int64, wait bool) backend.Lease {
		l, err := set.Acquire(ctx, amounts, backend.AcquireOptions{Wait: wait})
		outcome(what, l, err)
		return l
	}
	take := func(what string, id backend.Lease, amounts []int64, hint int64) {
		ok, at, err := cr.TakeWithHint(ctx, set, id, amounts, hint)
		if err != nil {
			t.Fatal(err)
		}
		out("%s: %v at t0%+d", what, ok, at-t0)
	}
	acq("1 unleased 10k", []int64{10, 0, 0, 0}, false)
	acq("2 unleased 1k", []int64{1, 0, 0, 0}, false)
	acq("3 unleased 5g 3w", []int64{0, 5, 3, 0}, false)
	acq("4 unleased 1g", []int64{0, 1, 0, 0}, false)
	take("5 leased hint0", 11, []int64{1, 1, 1, 1}, 0)
	now = t0 + 1700
	take("6 leased hint t0+1000", 11, []int64{1, 1, 1, 1}, t0+1000)
	take("7 leased again hint -1", 11, []int64{1, 1, 1, 1}, -1)
	take("8 leased other hint t0+1000", 12, []int64{1, 0, 0, 1}, t0+1000)
	take("9 leased third hint 0", 13, []int64{0, 0, 0, 1}, 0)
	stats()
	d, err := cr.ReadyIn(ctx, set, []int64{3, 2, 1, 0})
	out("10 check 3k 2g 1w: %v %v", d, err)
	d, err = cr.ReadyIn(ctx, set, []int64{0, 0, 0, 1})
	out("11 check 1r: %v %v", d, err)
	for _, id := range []backend.Lease{12, 13} {
		amounts := map[backend.Lease][]int64{12: {1, 0, 0, 1}, 13: {0, 0, 0, 1}}[id]
		out("settle %d: %v", id, set.Settle(ctx, id, amounts, nil, true, nil))
	}
	now = t0 + 1_000_000
	// A reply dated at the new instant, so that this process's estimate of
	// Redis's clock follows the test clock's jump.
	take("11b leased hint -1", 14, []int64{0, 0, 0, 1}, -1)
	out("settle 14: %v", set.Settle(ctx, 14, []int64{0, 0, 0, 1}, nil, true, nil))
	l := acq("12 waiting unleased 3k 2g 2w", []int64{3, 2, 2, 0}, true)
	_ = l
	l2 := acq("13 waiting leased 1k 1r", []int64{1, 0, 0, 1}, true)
	stats()
	if err := set.Settle(ctx, l2, []int64{1, 0, 0, 1}, []int64{-1, 0, 0, 0}, true, nil); err != nil {
		out("14 settle: %v", err)
	}
	d, err = cr.ReadyIn(ctx, set, []int64{8, 3, 3, 1})
	out("15 check 8k 3g 3w 1r: %v %v", d, err)
	acq("16 unleased 8k 3g 3w", []int64{8, 3, 3, 0}, false)
	acq("17 unleased 1g", []int64{0, 1, 0, 0}, false)
	stats()
	return sb.String()
}

// decisionsBefore is decisionTrace's output at c4796a1, before the
// argument layout changed (identical in both modes there).
const decisionsBefore = `1 unleased 10k: granted
2 unleased 1k: refused key=k after=1ms
3 unleased 5g 3w: granted
4 unleased 1g: refused key=g after=2ms
5 leased hint0: false at t0+2000
6 leased hint t0+1000: false at t0+2000
7 leased again hint -1: false at t0+2000
8 leased other hint t0+1000: true at t0+1000
9 leased third hint 0: true at t0+1700
stats [{Available:0 InUse:0 Debt:0} {Available:0 InUse:0 Debt:0} {Available:2 InUse:0 Debt:0} {Available:0 InUse:2 Debt:0}]
10 check 3k 2g 1w: 2.3ms <nil>
11 check 1r: 0s <nil>
settle 12: <nil>
settle 13: <nil>
11b leased hint -1: true at t0+1000000
settle 14: <nil>
12 waiting unleased 3k 2g 2w: granted
13 waiting leased 1k 1r: granted
stats [{Available:6 InUse:0 Debt:0} {Available:3 InUse:0 Debt:0} {Available:3 InUse:0 Debt:0} {Available:1 InUse:1 Debt:0}]
15 check 8k 3g 3w 1r: 1ms <nil>
16 unleased 8k 3g 3w: refused key=k after=1ms
17 unleased 1g: granted
stats [{Available:7 InUse:0 Debt:0} {Available:2 InUse:0 Debt:0} {Available:3 InUse:0 Debt:0} {Available:2 InUse:0 Debt:0}]
`

// TestEdgeDecisionsAsBefore: leased and unleased requests, waiting
// and not, with hints 0, -1 and instants, in check mode, on a test clock
// (every trailing argument present) decide exactly as before the argument
// layout changed, with functions and with scripts.
func TestEdgeDecisionsAsBefore(t *testing.T) {
	for _, scripts := range []bool{false, true} {
		if got := decisionTrace(t, scripts); got != decisionsBefore {
			t.Errorf("scripts=%v: decisions\n%s\nwant\n%s", scripts, got, decisionsBefore)
		}
	}
}

// settleWhileDown acquires 100 tokens and the slot of set (rateAndSlot),
// shuts Redis down, settles with 200 more used, starts Redis again (from
// its append-only file, if it keeps one), and returns the settle's error.
func settleWhileDown(t *testing.T, srv *redistest.Server, set backend.Set) error {
	t.Helper()
	ctx := context.Background()
	lease, err := set.Acquire(ctx, []int64{100, 1}, backend.AcquireOptions{})
	if err != nil {
		t.Fatal(err)
	}
	srv.Stop()
	err = set.Settle(ctx, lease, []int64{100, 1}, []int64{200, 0}, true, nil)
	if rerr := srv.Restart(); rerr != nil {
		t.Fatal(rerr)
	}
	return err
}
