package worker_test

import (
	"context"
	"errors"
	"testing"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

func TestNewWorkerIsAnActor(t *testing.T) {
	ctx := context.Background()
	w, err := worker.NewWorker(ctx, func(context.Context) (*[]int, error) { return new([]int), nil }, worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	var fs []*worker.Future[int]
	for i := range 50 {
		f, err := worker.Submit(ctx, w, func(_ context.Context, s *[]int, _ concurry.Limiter) (int, error) {
			*s = append(*s, i) // no lock: one goroutine owns s
			return len(*s), nil
		})
		if err != nil {
			t.Fatal(err)
		}
		fs = append(fs, f)
	}
	got, err := worker.Gather(ctx, fs)
	if err != nil {
		t.Fatal(err)
	}
	for i, n := range got {
		if n != i+1 {
			t.Fatalf("task %d saw %d items: not run in submission order", i, n)
		}
	}
	if st := w.Stats(); len(st.Workers) != 1 {
		t.Fatalf("%d workers, want 1", len(st.Workers))
	}
	if err := w.Stop(ctx); err != nil {
		t.Fatal(err)
	}
	_, err = worker.NewWorker(ctx, func(context.Context) (int, error) { return 0, nil }, worker.Options{MaxWorkers: 2})
	if !errors.Is(err, worker.ErrInvalidOptions) {
		t.Fatalf("MaxWorkers 2: %v, want ErrInvalidOptions", err)
	}
}
