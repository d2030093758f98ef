package unixsock_test

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/unixsock"
)

// Two clients stand for two processes: the first to connect hosts the
// server (auto-host), and both see one shared set.
func ExampleDial() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "limits.sock")
	quiet := unixsock.Options{Server: unixsock.ServerOptions{Logger: slog.New(slog.DiscardHandler)}}

	limits := []concurry.Limit{concurry.ResourceLimit{Key: "gpu", Capacity: 2}}
	var sets []*concurry.LimitSet
	for range 2 {
		client, err := unixsock.Dial(path, quiet)
		if err != nil {
			panic(err)
		}
		defer client.Close()
		set, err := concurry.NewLimitSet(limits, concurry.WithName("gpus"), concurry.WithBackend(client))
		if err != nil {
			panic(err)
		}
		sets = append(sets, set)
	}
	acq, _ := sets[0].Acquire(context.Background(), nil)
	st, _ := sets[1].Stats(context.Background())
	fmt.Println("held, as seen by the other client:", st.Limits[0].InUse)
	acq.Release()
	// Output:
	// held, as seen by the other client: 1
}

// Serve hosts the limits in a parent process until its context ends; the
// workers it starts then Dial the same path.
func ExampleServe() {
	dir, _ := os.MkdirTemp("", "example")
	defer os.RemoveAll(dir)
	path := filepath.Join(dir, "limits.sock")
	srv, err := unixsock.Listen(path, unixsock.ServerOptions{Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		panic(err)
	}
	defer srv.Close() // or: unixsock.Serve(ctx, path, opts), which returns when ctx ends

	client, _ := unixsock.Dial(path, unixsock.Options{DisableAutoHost: true})
	defer client.Close()
	calls := []concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: 100}}
	if _, err := concurry.NewLimitSet(calls, concurry.WithName("api"), concurry.WithBackend(client)); err != nil {
		panic(err)
	}
	other := []concurry.Limit{concurry.CallLimit{Window: time.Minute, Capacity: 500}}
	_, err = concurry.NewLimitSet(other, concurry.WithName("api"), concurry.WithBackend(client))
	fmt.Println(errors.Is(err, concurry.ErrLimitMismatch))
	// Output:
	// true
}
