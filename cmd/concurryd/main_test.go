package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/unixsock"
	"github.com/concurry/concurry/internal/testutil"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	if args := os.Getenv("CONCURRYD_TEST_ARGS"); args != "" {
		os.Args = append([]string{"concurryd"}, strings.Fields(args)...)
		main()
		os.Exit(0)
	}
	goleak.VerifyTestMain(m)
}

func sockPath(t *testing.T) string { return testutil.SocketPath(t) }

// acquireOnce opens a set on path and takes and releases one unit.
func acquireOnce(path string) error {
	c, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	if err != nil {
		return err
	}
	defer c.Close()
	ls, err := concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
		concurry.WithName("d"), concurry.WithBackend(c))
	if err != nil {
		return err
	}
	a, err := ls.Acquire(context.Background(), nil)
	if err != nil {
		return err
	}
	return a.Release()
}

func eventually(t *testing.T, f func() error) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for err := f(); err != nil; err = f() {
		if time.Now().After(deadline) {
			t.Fatal(err)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

func TestRun(t *testing.T) {
	path := sockPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-socket", path, "-mode", "0660", "-log-format", "json"}, &logs) }()
	eventually(t, func() error { return acquireOnce(path) })
	fi, err := os.Stat(path)
	if err != nil || fi.Mode().Perm() != 0o660 {
		t.Fatalf("socket: %v %v", fi.Mode(), err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), `"msg":"concurry limit server stopped"`) {
		t.Fatalf("no shutdown in the log:\n%s", logs.String())
	}
}

func TestFlags(t *testing.T) {
	bad := [][]string{
		{},
		{"-socket", "/tmp/x", "extra"},
		{"-socket", "/tmp/x", "-mode", "999"},
		{"-socket", "/tmp/x", "-allow-uid", "a"},
		{"-socket", "/tmp/x", "-allow-gid", "-1"},
		{"-socket", "/tmp/x", "-log-level", "loud"},
		{"-socket", "/tmp/x", "-log-format", "xml"},
		{"-socket", "/tmp/x", "-max-conns", "-1"},
		{"-socket", "/tmp/x", "-max-conn-waits", "x"},
		{"-nope"},
	}
	for _, args := range bad {
		t.Setenv("CONCURRY_SOCKET", "")
		var out bytes.Buffer
		if err := run(context.Background(), args, &out); !errors.Is(err, errUsage) {
			t.Errorf("%v: got %v, want a usage error", args, err)
		}
	}
	var out bytes.Buffer
	if err := run(context.Background(), []string{"-h"}, &out); !errors.Is(err, errHelp()) || !strings.Contains(out.String(), "-socket") {
		t.Errorf("-h: %v %q", err, out.String())
	}
}

// TestSignal runs the daemon as a process and stops it with SIGTERM, then
// restarts it on the same path: a client of the first daemon reconnects to
// the second.
func TestSignal(t *testing.T) {
	path := sockPath(t)
	c, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var ls *concurry.LimitSet
	for round := range 2 {
		var logs testutil.SyncBuffer
		cmd := exec.Command(os.Args[0], "-test.run=^$")
		cmd.Env = append(os.Environ(), "CONCURRYD_TEST_ARGS=-socket "+path+" -allow-uid 1,2")
		cmd.Stderr = &logs
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		eventually(t, func() error {
			var err error
			if ls == nil {
				ls, err = concurry.NewLimitSet([]concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}},
					concurry.WithName("d"), concurry.WithBackend(c))
				if err != nil {
					return err
				}
			}
			a, err := ls.Acquire(context.Background(), nil)
			if err == nil {
				err = a.Release()
			}
			return err
		})
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		if err := cmd.Wait(); err != nil {
			t.Fatalf("round %d: exit %v\n%s", round, err, logs.String())
		}
		if _, err := os.Stat(path); !os.IsNotExist(err) {
			t.Fatalf("round %d: socket left behind: %v", round, err)
		}
		if !strings.Contains(logs.String(), "listening") || !strings.Contains(logs.String(), "stopped") {
			t.Fatalf("round %d: log:\n%s", round, logs.String())
		}
	}
}

func errHelp() error { return flag.ErrHelp }

// TestCapFlags: the caps given as flags reach the server: with -max-conns 1
// a second client is refused with unixsock.ErrServerLimit while the first
// is served.
func TestCapFlags(t *testing.T) {
	path := sockPath(t)
	ctx, cancel := context.WithCancel(context.Background())
	var logs testutil.SyncBuffer
	done := make(chan error, 1)
	go func() { done <- run(ctx, []string{"-socket", path, "-max-conns", "1", "-frame-timeout", "1s"}, &logs) }()
	first, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Close()
	spec := []concurry.Limit{concurry.ResourceLimit{Key: "conn", Capacity: 1}}
	eventually(t, func() error {
		_, err := concurry.NewLimitSet(spec, concurry.WithName("d"), concurry.WithBackend(first))
		return err
	})
	second, err := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true, Conns: 1})
	if err != nil {
		t.Fatal(err)
	}
	defer second.Close()
	if _, err := concurry.NewLimitSet(spec, concurry.WithName("d"), concurry.WithBackend(second)); !errors.Is(err, unixsock.ErrServerLimit) {
		t.Fatalf("a second connection with -max-conns 1: %v, want ErrServerLimit", err)
	}
	cancel()
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(logs.String(), "MaxConns") {
		t.Fatalf("the refusal is not in the log:\n%s", logs.String())
	}
}
