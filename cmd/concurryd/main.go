// Command concurryd is a standalone limit server: it hosts the named limit
// sets of package concurry on a Unix socket, shared by every process of the
// machine that dials it with backend/unixsock.
//
// Usage:
//
//	concurryd -socket /run/myapp/limits.sock [-mode 0660 -group myapp] [-allow-uid 1001,1002]
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
	fs := flag.NewFlagSet("concurryd", flag.ContinueOnError)
	fs.SetOutput(stderr)
	socket := fs.String("socket", os.Getenv("CONCURRY_SOCKET"), "path of the Unix socket to serve (default $CONCURRY_SOCKET)")
	mode := fs.String("mode", "0600", "permission of the socket file, in octal")
	group := fs.String("group", "", "group (name or id) given the socket and admitted as peers")
	uids := fs.String("allow-uid", "", "comma-separated user ids admitted besides the daemon's own")
	gids := fs.String("allow-gid", "", "comma-separated primary group ids admitted")
	maxFrame := fs.Int("max-frame", 0, "longest frame accepted, in bytes (default 64 KiB)")
	retain := fs.Duration("retain", 0, "how long an unused set is kept (default: its longest window; negative: forget at once)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	format := fs.String("log-format", "text", "text or json")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return err
		}
		return errUsage
	}
	opts, err := options(*socket, *mode, *uids, *gids, fs.NArg())
	if err != nil {
		fmt.Fprintln(stderr, "concurryd:", err)
		fs.Usage()
		return errUsage
	}
	logger, err := newLogger(stderr, *level, *format)
	if err != nil {
		fmt.Fprintln(stderr, "concurryd:", err)
		return errUsage
	}
	opts.Group, opts.MaxFrame, opts.Retain, opts.Logger = *group, *maxFrame, *retain, logger
	return unixsock.Serve(ctx, *socket, opts)
}

// options checks the flags that need parsing.
func options(socket, mode, uids, gids string, extra int) (unixsock.ServerOptions, error) {
	var opts unixsock.ServerOptions
	if socket == "" {
		return opts, errors.New("-socket is required")
	}
	if extra > 0 {
		return opts, errors.New("unexpected arguments")
	}
	m, err := strconv.ParseUint(mode, 8, 32)
	if err != nil || m == 0 || m > 0o777 {
		return opts, fmt.Errorf("bad -mode %q: want octal permissions such as 0660", mode)
	}
	opts.Mode = os.FileMode(m)
	if opts.AllowUIDs, err = ids(uids); err != nil {
		return opts, fmt.Errorf("bad -allow-uid: %w", err)
	}
	if opts.AllowGIDs, err = ids(gids); err != nil {
		return opts, fmt.Errorf("bad -allow-gid: %w", err)
	}
	return opts, nil
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
