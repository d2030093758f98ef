// Command concurryd is a standalone limit server: it hosts the named limit
// sets of package concurry on a Unix socket, shared by every process of the
// machine that dials it with backend/unixsock.
//
// Usage:
//
//	concurryd -socket /run/myapp/limits.sock [-mode 0660 -group myapp] [-allow-uid 1001,1002]
//
// The caps on what clients can make it hold (-max-conns, -max-sets,
// -max-conn-sets, -max-waits, -max-conn-waits, -max-frame, -frame-timeout)
// default to those of unixsock.ServerOptions; a request past one is refused
// alone, and the client that made it keeps its connection and holdings.
//
// It runs until SIGTERM or SIGINT, then shuts down gracefully: it stops
// accepting, drops every connection (their holdings are released) and
// removes the socket. It logs with log/slog to standard error. Its state
// lives as long as the daemon does, so clients that restart cannot reset a
// limit; give them unixsock.Options{DisableAutoHost: true} so that they wait
// for the daemon rather than take over while it restarts.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"github.com/concurry/concurry/backend/unixsock"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, syscall.SIGINT)
	defer stop()
	err := run(ctx, os.Args[1:], os.Stderr)
	switch {
	case errors.Is(err, flag.ErrHelp):
	case errors.Is(err, errUsage):
		os.Exit(2)
	case err != nil:
		fmt.Fprintln(os.Stderr, "concurryd:", err)
		os.Exit(1)
	}
}

var errUsage = errors.New("usage")

// run parses args and serves until ctx ends.
func run(ctx context.Context, args []string, stderr io.Writer) error {
	socket, opts, err := parse(args, stderr)
	if err != nil {
		return err
	}
	return unixsock.Serve(ctx, socket, opts)
}

// flags are the command line's values that need parsing after flag.Parse.
type flags struct {
	socket, mode, group, uids, gids, level, format string
}

// parse reads the command line into the socket path and the server's
// options. It returns flag.ErrHelp for -h and errUsage, after saying why,
// for anything it cannot use.
func parse(args []string, stderr io.Writer) (string, unixsock.ServerOptions, error) {
	fs := flag.NewFlagSet("concurryd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	var f flags
	var opts unixsock.ServerOptions
	define(fs, &f, &opts)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return "", opts, err
		}
		return "", opts, errUsage
	}
	err := f.apply(&opts, fs.NArg())
	if err == nil {
		opts.Logger, err = newLogger(stderr, f.level, f.format)
	}
	if err != nil {
		fmt.Fprintln(stderr, "concurryd:", err)
		fs.Usage()
		return "", opts, errUsage
	}
	return f.socket, opts, nil
}

// define declares the flags: the ones that need parsing into f, the caps
// straight into opts.
func define(fs *flag.FlagSet, f *flags, opts *unixsock.ServerOptions) {
	fs.StringVar(&f.socket, "socket", os.Getenv("CONCURRY_SOCKET"), "path of the Unix socket to serve (default $CONCURRY_SOCKET)")
	fs.StringVar(&f.mode, "mode", "0600", "permission of the socket file, in octal")
	fs.StringVar(&f.group, "group", "", "group (name or id) given the socket and admitted as peers")
	fs.StringVar(&f.uids, "allow-uid", "", "comma-separated user ids admitted besides the daemon's own")
	fs.StringVar(&f.gids, "allow-gid", "", "comma-separated primary group ids admitted")
	fs.StringVar(&f.level, "log-level", "info", "debug, info, warn or error")
	fs.StringVar(&f.format, "log-format", "text", "text or json")
	fs.IntVar(&opts.MaxFrame, "max-frame", 0, "longest frame accepted, in bytes (default 64 KiB, at least 20 KiB)")
	fs.IntVar(&opts.MaxConns, "max-conns", 0, "connections served at once (default 1024)")
	fs.IntVar(&opts.MaxSets, "max-sets", 0, "named sets held at once, open or retained (default 10000)")
	fs.IntVar(&opts.MaxConnSets, "max-conn-sets", 0, "sets one connection may have open (default 4096)")
	fs.IntVar(&opts.MaxWaits, "max-waits", 0, "acquisitions waiting at once, over every connection (default 65536)")
	fs.IntVar(&opts.MaxConnWaits, "max-conn-waits", 0, "acquisitions one connection may have waiting (default 16384)")
	fs.DurationVar(&opts.HelloTimeout, "hello-timeout", 0, "time a new connection has to say hello (default 5s)")
	fs.DurationVar(&opts.FrameTimeout, "frame-timeout", 0, "time the rest of a frame has to arrive once it began (default 10s)")
	fs.DurationVar(&opts.WriteTimeout, "write-timeout", 0, "time a client may leave its replies unread before it is dropped (default 10s)")
	fs.DurationVar(&opts.Retain, "retain", 0, "how long an unused set is kept, whatever its state (default: until it is full again, so forgetting it resets nothing; negative: forget at once)")
	fs.DurationVar(&opts.IdleCheck, "idle-check", 0, "how often an unused set is checked for being full again (default 1m)")
}

// apply checks the flags that need parsing and sets them in opts.
func (f *flags) apply(opts *unixsock.ServerOptions, extra int) error {
	if f.socket == "" {
		return errors.New("-socket is required")
	}
	if extra > 0 {
		return errors.New("unexpected arguments")
	}
	m, err := strconv.ParseUint(f.mode, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return fmt.Errorf("bad -mode %q: want octal permissions such as 0660", f.mode)
	}
	opts.Mode, opts.Group = os.FileMode(m), f.group
	if opts.AllowUIDs, err = ids(f.uids); err != nil {
		return fmt.Errorf("bad -allow-uid: %w", err)
	}
	if opts.AllowGIDs, err = ids(f.gids); err != nil {
		return fmt.Errorf("bad -allow-gid: %w", err)
	}
	for name, n := range map[string]int{"-max-frame": opts.MaxFrame, "-max-conns": opts.MaxConns, "-max-sets": opts.MaxSets,
		"-max-conn-sets": opts.MaxConnSets, "-max-waits": opts.MaxWaits, "-max-conn-waits": opts.MaxConnWaits} {
		if n < 0 {
			return fmt.Errorf("bad %s %d: want a positive number (0 for the default)", name, n)
		}
	}
	return nil
}

func ids(s string) ([]int, error) {
	var out []int
	for f := range strings.SplitSeq(s, ",") {
		if f = strings.TrimSpace(f); f == "" {
			continue
		}
		id, err := strconv.Atoi(f)
		if err != nil || id < 0 {
			return nil, fmt.Errorf("%q is not an id", f)
		}
		out = append(out, id)
	}
	return out, nil
}

func newLogger(w io.Writer, level, format string) (*slog.Logger, error) {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		return nil, fmt.Errorf("bad -log-level %q", level)
	}
	ho := &slog.HandlerOptions{Level: l}
	switch format {
	case "text":
		return slog.New(slog.NewTextHandler(w, ho)), nil
	case "json":
		return slog.New(slog.NewJSONHandler(w, ho)), nil
	}
	return nil, fmt.Errorf("bad -log-format %q", format)
}
