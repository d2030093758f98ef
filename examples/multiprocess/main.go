// Command multiprocess shows limits shared by several OS processes: the
// parent starts 4 copies of itself, and each child, with 4 goroutines,
// makes "calls" for two seconds under one CallLimit (40 per second) and one
// ResourceLimit (2 GPUs) shared by all of them. The first child to start
// hosts the limit server inside itself (auto-host); the others connect.
// The parent prints what each process was admitted and the total, which
// stays within the one shared budget.
//
//	go run ./examples/multiprocess
package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend"
	"github.com/concurry/concurry/backend/unixsock"
)

const (
	children  = 4
	perSecond = 40
	gpus      = 2
	runFor    = 2 * time.Second
)

func limits() []concurry.Limit {
	return []concurry.Limit{
		concurry.CallLimit{Window: time.Second, Capacity: perSecond},
		concurry.ResourceLimit{Key: "gpu", Capacity: gpus},
	}
}

func main() {
	var err error
	if os.Getenv("MULTIPROCESS_SOCKET") != "" {
		err = child()
	} else {
		err = parent()
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "multiprocess:", err)
		os.Exit(1)
	}
}

// parent starts the children, collects their reports and prints the totals.
func parent() error {
	dir, err := os.MkdirTemp("", "concurry-example")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	exe, err := os.Executable()
	if err != nil {
		return err
	}
	start := time.Now().Add(500 * time.Millisecond) // time for every child to connect
	end := start.Add(runFor)
	var cmds []*exec.Cmd
	var stdins []io.WriteCloser
	var outs []*bufio.Scanner
	for range children {
		cmd := exec.Command(exe)
		cmd.Env = append(os.Environ(), "MULTIPROCESS_SOCKET="+filepath.Join(dir, "limits.sock"),
			"MULTIPROCESS_START="+strconv.FormatInt(start.UnixNano(), 10),
			"MULTIPROCESS_END="+strconv.FormatInt(end.UnixNano(), 10))
		cmd.Stderr = os.Stderr
		in, _ := cmd.StdinPipe()
		out, _ := cmd.StdoutPipe()
		if err := cmd.Start(); err != nil {
			return err
		}
		cmds, stdins, outs = append(cmds, cmd), append(stdins, in), append(outs, bufio.NewScanner(out))
	}
	total := 0
	for i, out := range outs {
		if !out.Scan() {
			return fmt.Errorf("child %d stopped without a report", i)
		}
		var n, pid int
		var hosting bool
		if _, err := fmt.Sscanf(out.Text(), "admitted %d pid %d hosting %t", &n, &pid, &hosting); err != nil {
			return fmt.Errorf("child %d: bad report %q", i, out.Text())
		}
		host := ""
		if hosting {
			host = " (hosting the limit server)"
		}
		fmt.Printf("process %d, pid %d: %d calls admitted%s\n", i, pid, n, host)
		total += n
	}
	for i := range cmds { // every child has finished: the host may stop now
		stdins[i].Close()
		if err := cmds[i].Wait(); err != nil {
			return fmt.Errorf("child %d: %w", i, err)
		}
	}
	bound := perSecond + int(perSecond*runFor/time.Second)
	fmt.Printf("total: %d calls admitted across %d processes (shared bound: %d burst + %d/s × %v = %d)\n",
		total, children, perSecond, perSecond, runFor, bound)
	if total > bound {
		return fmt.Errorf("%d admitted, more than the shared bound %d", total, bound)
	}
	return nil
}

// child makes calls from 4 goroutines until the parent's end time, then
// reports, and keeps its client (and the server, if it hosts it) until the
// parent closes its stdin.
func child() error {
	quiet := unixsock.ServerOptions{Logger: slog.New(slog.DiscardHandler)}
	client, err := unixsock.Dial(os.Getenv("MULTIPROCESS_SOCKET"), unixsock.Options{Server: quiet})
	if err != nil {
		return err
	}
	defer client.Close()
	set, err := openShared(client)
	if err != nil {
		return err
	}
	startNs, _ := strconv.ParseInt(os.Getenv("MULTIPROCESS_START"), 10, 64)
	endNs, _ := strconv.ParseInt(os.Getenv("MULTIPROCESS_END"), 10, 64)
	time.Sleep(time.Until(time.Unix(0, startNs))) // all processes start together
	ctx, cancel := context.WithDeadline(context.Background(), time.Unix(0, endNs))
	defer cancel()
	var admitted atomic.Int64
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			for ctx.Err() == nil {
				err := set.Do(ctx, nil, func(context.Context, *concurry.Acquisition) error {
					admitted.Add(1)
					time.Sleep(5 * time.Millisecond) // the work done while holding a GPU
					return nil
				})
				if err != nil && !errors.Is(err, context.DeadlineExceeded) {
					fmt.Fprintln(os.Stderr, "call failed:", err)
				}
			}
		})
	}
	wg.Wait()
	fmt.Printf("admitted %d pid %d hosting %t\n", admitted.Load(), os.Getpid(), client.Hosting())
	io.Copy(io.Discard, os.Stdin)
	return nil
}

// openShared opens the shared set, retrying briefly while another child is
// starting the server.
func openShared(client *unixsock.Client) (*concurry.LimitSet, error) {
	deadline := time.Now().Add(5 * time.Second)
	for {
		set, err := concurry.NewLimitSet(limits(), concurry.WithName("example/shared"), concurry.WithBackend(client))
		if err == nil || !errors.Is(err, backend.ErrBackendUnavailable) || time.Now().After(deadline) {
			return set, err
		}
		time.Sleep(10 * time.Millisecond)
	}
}
