package redis

import (
	"context"
	"embed"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// The scripts. Each is the shared library, the algorithms and the state
// helpers followed by one entry point; go-redis runs them with EVALSHA and
// falls back to EVAL (which loads them) on NOSCRIPT.
var (
	acquireScript = newScript("acquire.lua")
	settleScript  = newScript("settle.lua")
	renewScript   = newScript("renew.lua")
	statsScript   = newScript("stats.lua")
)

func newScript(entry string) *redis.Script {
	var sb strings.Builder
	for _, name := range []string{"lib.lua", "algorithms.lua", "state.lua", entry} {
		src, err := luaFiles.ReadFile("lua/" + name)
		if err != nil {
			panic("concurry/backend/redis: missing embedded script " + name)
		}
		sb.Write(src)
		sb.WriteByte('\n')
	}
	return redis.NewScript(sb.String())
}

// run runs sc over the set's keys with the set's fixed arguments followed by
// extra, and returns the reply as a slice. Errors are classified by
// classify.
func (s *Set) run(ctx context.Context, sc *redis.Script, extra ...any) ([]any, error) {
	args := make([]any, 0, 1+len(s.static)+len(extra))
	args = append(args, s.b.now())
	args = append(args, s.static...)
	args = append(args, extra...)
	res, err := sc.Run(ctx, s.b.client, s.keys, args...).Slice()
	if err != nil {
		return nil, classify(ctx, err)
	}
	if len(res) == 0 {
		return nil, fmt.Errorf("%w: empty reply", ErrScript)
	}
	if code, _ := res[0].(int64); code == -1 && len(res) > 1 {
		stored, _ := res[1].(string)
		return nil, fmt.Errorf("%w: %q is defined in redis as %s, not %s", backend.ErrLimitMismatch, s.name, stored, s.def)
	}
	return res, nil
}

// unavailablePrefixes are the error replies that mean the server cannot serve
// now, as opposed to a script or usage error.
var unavailablePrefixes = []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN", "READONLY", "NOREPLICAS", "BUSY"}

// classify turns a go-redis error into the caller's context error, an error
// matching backend.ErrBackendUnavailable (the server could not be reached or
// cannot serve now), or ErrScript.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return context.Cause(ctx)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) {
		for _, p := range unavailablePrefixes {
			if strings.HasPrefix(rerr.Error(), p) {
				return fmt.Errorf("%w: %w", backend.ErrBackendUnavailable, err)
			}
		}
		return fmt.Errorf("%w: %w", ErrScript, err)
	}
	return fmt.Errorf("%w: %w", backend.ErrBackendUnavailable, err)
}

// integers returns res[from:] as int64s.
func integers(res []any, from int) ([]int64, error) {
	out := make([]int64, 0, max(0, len(res)-from))
	for _, v := range res[from:] {
		n, ok := v.(int64)
		if !ok {
			return nil, fmt.Errorf("%w: %v is not an integer", ErrScript, v)
		}
		out = append(out, n)
	}
	return out, nil
}
