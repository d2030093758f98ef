package redis_test

import (
	"context"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
	cr "github.com/concurry/concurry/backend/redis"
)

// logRecorder is a slog.Handler that keeps every record's message and
// attributes as one line, and signals each on a channel.
type logRecorder struct {
	mu    sync.Mutex
	lines []string // guarded by mu
	ch    chan string
}

func newLogRecorder() *logRecorder { return &logRecorder{ch: make(chan string, 1024)} }

func (r *logRecorder) Enabled(context.Context, slog.Level) bool { return true }

func (r *logRecorder) Handle(_ context.Context, rec slog.Record) error {
	var sb strings.Builder
	fmt.Fprintf(&sb, "%s %s", rec.Level, rec.Message)
	rec.Attrs(func(a slog.Attr) bool {
		fmt.Fprintf(&sb, " %s=%v", a.Key, a.Value)
		return true
	})
	line := sb.String()
	r.mu.Lock()
	r.lines = append(r.lines, line)
	r.mu.Unlock()
	select {
	case r.ch <- line:
	default:
	}
	return nil
}

func (r *logRecorder) WithAttrs([]slog.Attr) slog.Handler { return r }
func (r *logRecorder) WithGroup(string) slog.Handler      { return r }

// await returns the first line logged (from now on, or already waiting in
// the channel) that contains substr, failing the test after timeout.
func (r *logRecorder) await(t *testing.T, substr string, timeout time.Duration) string {
	t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case line := <-r.ch:
			if strings.Contains(line, substr) {
				return line
			}
		case <-deadline:
			r.mu.Lock()
			defer r.mu.Unlock()
			t.Fatalf("no log line with %q within %v; got %q", substr, timeout, r.lines)
			return ""
		}
	}
}

// open opens a set of specs in b under the test's name, closed when the
// test ends.
func open(t *testing.T, b *cr.Backend, specs ...backend.Spec) backend.Set {
	t.Helper()
	set, err := b.Open(context.Background(), t.Name(), specs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { set.Close() })
	return set
}

// available returns the Available of every spec of set.
func available(t *testing.T, set backend.Set) []int64 {
	t.Helper()
	st, err := set.Stats(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	out := make([]int64, len(st))
	for i, s := range st {
		out[i] = s.Available
	}
	return out
}

// within fails the test unless d ≤ limit.
func within(t *testing.T, what string, d, limit time.Duration) {
	t.Helper()
	if d > limit {
		t.Fatalf("%s took %v, more than %v", what, d, limit)
	}
}

// cmdHook is a go-redis hook that calls itself with every command the
// client sends, before sending it; pipelines pass untouched.
type cmdHook func(redis.Cmder)

func (h cmdHook) DialHook(next redis.DialHook) redis.DialHook { return next }
func (h cmdHook) ProcessHook(next redis.ProcessHook) redis.ProcessHook {
	return func(ctx context.Context, cmd redis.Cmder) error {
		h(cmd)
		return next(ctx, cmd)
	}
}
func (h cmdHook) ProcessPipelineHook(next redis.ProcessPipelineHook) redis.ProcessPipelineHook {
	return next
}
