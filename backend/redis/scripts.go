package redis

import (
	"context"
	"crypto/sha256"
	"embed"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"

	"github.com/redis/go-redis/v9"

	"github.com/concurry/concurry/backend"
)

//go:embed lua/*.lua
var luaFiles embed.FS

// entry is one entry point of the Lua library.
type entry int

const (
	acquireEntry entry = iota
	checkEntry
	settleEntry
	renewEntry
	statsEntry
	projectEntry
	pauseEntry
	lowerEntry
	undoEntry
	numEntries
)

// entries are the entry points' Lua names and the files that define them.
var entries = [numEntries]struct{ name, file string }{
	{"acquire", "acquire.lua"}, {"check", "acquire.lua"}, {"settle", "settle.lua"},
	{"renew", "renew.lua"}, {"stats", "stats.lua"}, {"project", "project.lua"},
	{"pause", "feedback.lua"}, {"lower", "feedback.lua"}, {"undo", "undo.lua"},
}

// library is the Lua code: one function library with every entry point for
// FUNCTION LOAD (Redis 7 and later), and one script per entry point for
// servers without functions. Its name and function names carry a digest of
// the code, so that processes running different versions share a server
// without replacing each other's functions.
type library struct {
	source  string                    // the FUNCTION LOAD payload
	funcs   [numEntries]string        // the registered function names
	names   [numEntries]any           // the same, each in an interface made once
	scripts [numEntries]*redis.Script // the same entry points as scripts
	sources [numEntries]string        // the scripts' sources
}

var lib = newLibrary()

func newLibrary() *library {
	common := readLua("lib.lua", "algorithms.lua", "state.lua")
	var all strings.Builder
	all.WriteString(common)
	for i, e := range entries {
		if i == 0 || e.file != entries[i-1].file {
			all.WriteString(readLua(e.file))
		}
	}
	sum := sha256.Sum256([]byte(all.String()))
	version := hex.EncodeToString(sum[:6])
	l := &library{}
	var src strings.Builder
	src.WriteString("#!lua name=concurry_" + version + "\n")
	src.WriteString(all.String())
	src.WriteString("FUNCTIONS = true\n")
	for i, e := range entries {
		l.funcs[i] = "concurry_" + e.name + "_" + version
		l.names[i] = l.funcs[i]
		fmt.Fprintf(&src, "redis.register_function('%s', %s)\n", l.funcs[i], e.name)
		// Before Redis 5 a script must ask for effects replication to write after TIME.
		l.sources[i] = "if redis.replicate_commands then pcall(redis.replicate_commands) end\n" +
			common + readLua(e.file) + "return " + e.name + "(KEYS, ARGV)\n"
		l.scripts[i] = redis.NewScript(l.sources[i])
	}
	l.source = src.String()
	return l
}

func readLua(names ...string) string {
	var sb strings.Builder
	for _, name := range names {
		src, err := luaFiles.ReadFile("lua/" + name)
		if err != nil {
			panic("concurry/backend/redis: missing embedded script " + name)
		}
		sb.Write(src)
		sb.WriteByte('\n')
	}
	return sb.String()
}

// call runs entry e over keys (boxed: the same, each in an interface, made
// once per set) with args: as a function (FCALL), loading the library first
// where the server lacks it, or as a script (EVALSHA, then EVAL) once the
// server turns out to have no functions or forbids them. With once,
// go-redis is told never to send the call a second time (see onceCmd).
//
// args[0] is the set's parameters, whole or in their short form (see
// newArgs); full is the whole string. A function that does not know the
// short form fails before it does anything (NOSPEC), and the call is sent
// again with the whole string; a script is always sent the whole string.
// args[0] is left whole then.
func (b *Backend) call(ctx context.Context, e entry, keys []string, boxed []any, args []any, full any, once bool) (any, error) {
	if !b.scripts.Load() {
		gen := b.loads.Load()
		res, err := b.fcall(ctx, e, boxed, args, full, once)
		if err == nil {
			return res, nil
		}
		var rerr redis.Error
		if !errors.As(err, &rerr) {
			return res, err
		}
		msg := rerr.Error()
		switch {
		case strings.Contains(msg, "Function not found"):
			if err := b.loadLibrary(ctx, gen); err != nil {
				return nil, err
			}
			res, err = b.fcall(ctx, e, boxed, args, full, once)
			if err == nil || !strings.Contains(err.Error(), "Function not found") {
				return res, err
			}
			// A node the client does not know yet: run this call as a script.
		case strings.Contains(strings.ToLower(msg), "unknown command") || strings.HasPrefix(msg, "NOPERM"):
			b.scripts.Store(true)
		default:
			return res, err
		}
	}
	args[0] = full
	if !once {
		return lib.scripts[e].Run(ctx, b.client, keys, args...).Result()
	}
	res, err := b.send(ctx, "evalsha", lib.scripts[e].Hash(), boxed, args, true)
	if err != nil && strings.HasPrefix(err.Error(), "NOSCRIPT") { // not run: sending the source is its first run
		return b.send(ctx, "eval", lib.sources[e], boxed, args, true)
	}
	return res, err
}

// fcall runs entry e as a function, sending it again with the whole
// parameters when it did not know their short form.
func (b *Backend) fcall(ctx context.Context, e entry, boxed []any, args []any, full any, once bool) (any, error) {
	res, err := b.send(ctx, "fcall", lib.names[e], boxed, args, once)
	if err != nil && strings.HasPrefix(err.Error(), "NOSPEC") {
		args[0] = full
		res, err = b.send(ctx, "fcall", lib.names[e], boxed, args, once)
	}
	return res, err
}

// onceCmd is a command go-redis must not send again once it may have
// reached the server: a call that leaves no record there (a grant that took
// no resource, and its settle) could not be told apart from its repetition,
// which would take or refund twice. A call whose reply is lost fails instead.
type onceCmd struct{ *redis.Cmd }

// NoRetry tells go-redis not to resend the command.
func (onceCmd) NoRetry() bool { return true }

// send sends command name (FCALL, EVALSHA or EVAL) of fn (a function name,
// a digest or a source) over the keys boxed with args; with once, never
// twice (see onceCmd).
func (b *Backend) send(ctx context.Context, name string, fn any, boxed []any, args []any, once bool) (any, error) {
	all := make([]any, 0, 3+len(boxed)+len(args))
	all = append(all, name, fn, len(boxed))
	all = append(all, boxed...)
	cmd := redis.NewCmd(ctx, append(all, args...)...)
	if len(boxed) > 0 {
		cmd.SetFirstKeyPos(3)
	}
	if once {
		_ = b.client.Process(ctx, onceCmd{cmd})
	} else {
		_ = b.client.Process(ctx, cmd)
	}
	return cmd.Result()
}

// loadLibrary loads the library on every master, unless another call has
// loaded it since the loads counter was gen. A server that refuses it (no
// functions, or an ACL that forbids FUNCTION) makes b use scripts.
func (b *Backend) loadLibrary(ctx context.Context, gen uint64) error {
	b.loadMu.Lock()
	defer b.loadMu.Unlock()
	if b.loads.Load() != gen {
		return nil
	}
	defer b.loads.Add(1)
	load := func(ctx context.Context, c *redis.Client) error {
		return c.FunctionLoadReplace(ctx, lib.source).Err()
	}
	var err error
	switch c := b.client.(type) {
	case *redis.ClusterClient:
		err = c.ForEachMaster(ctx, load)
	case *redis.Ring:
		err = c.ForEachShard(ctx, load)
	default:
		err = b.client.FunctionLoadReplace(ctx, lib.source).Err()
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !unavailable(rerr) {
		b.scripts.Store(true)
		return nil
	}
	return err
}

// newArgs returns the arguments of a call of the set: its parameters (in
// their short form while the server runs functions: see Backend.call), with
// room for n more and the test clock.
func (s *set) newArgs(n int) []any {
	args := make([]any, 1, 2+n)
	args[0] = s.short // an interface made once: no allocation per call
	if s.b.scripts.Load() {
		args[0] = s.params
	}
	return args
}

// run runs entry e over the set's keys with args (from newArgs) and the test
// clock if there is one, and returns the reply: an integer or a slice.
// Errors are classified by classify. With once the call is never sent
// twice (see onceCmd). See do for a call bounded by ctx.
func (s *set) run(ctx context.Context, e entry, args []any, once bool) (any, error) {
	if s.b.clock != nil {
		args = append(args, s.b.clock())
	}
	res, err := s.b.call(ctx, e, s.keys, s.boxed, args, s.params, once)
	if err != nil {
		err = classify(ctx, err)
	}
	s.b.reached(err)
	if err != nil {
		return nil, err
	}
	if v, ok := res.([]any); ok && len(v) > 1 && v[0] == int64(-1) {
		stored, _ := v[1].(string)
		return nil, fmt.Errorf("%w: %q is defined in redis as %s, not %s", backend.ErrLimitMismatch, s.name, stored, s.def)
	}
	return res, nil
}

// integers returns the reply res, which must be a non-empty slice of
// integers, from index from on.
func integers(res any, from int) ([]int64, error) {
	v, ok := res.([]any)
	if !ok || len(v) == 0 {
		return nil, fmt.Errorf("%w: %v is not a list", ErrScript, res)
	}
	out := make([]int64, 0, max(0, len(v)-from))
	for _, x := range v[from:] {
		n, ok := x.(int64)
		if !ok {
			return nil, fmt.Errorf("%w: %v is not an integer", ErrScript, x)
		}
		out = append(out, n)
	}
	return out, nil
}

// unavailablePrefixes are the error replies that mean the server cannot serve
// now, as opposed to a script or usage error.
var unavailablePrefixes = []string{"CLUSTERDOWN", "LOADING", "MASTERDOWN", "TRYAGAIN", "READONLY", "NOREPLICAS", "BUSY"}

// classify turns a go-redis error into the caller's context error, an error
// matching backend.ErrBackendUnavailable (the server could not be reached or
// cannot serve now), or ErrScript.
func classify(ctx context.Context, err error) error {
	if ctx.Err() != nil && (errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded)) {
		return backend.ContextError(ctx)
	}
	var rerr redis.Error
	if errors.As(err, &rerr) && !unavailable(rerr) {
		return fmt.Errorf("%w: %w", ErrScript, err)
	}
	return fmt.Errorf("%w: %w", backend.ErrBackendUnavailable, err)
}

// unavailable reports whether the error reply err means that the server
// cannot serve now.
func unavailable(err redis.Error) bool {
	for _, p := range unavailablePrefixes {
		if strings.HasPrefix(err.Error(), p) {
			return true
		}
	}
	return false
}
