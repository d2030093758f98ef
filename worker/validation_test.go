package worker_test

import (
	"context"
	"errors"
	"runtime"
	"testing"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/worker"
)

// Every argument that can never be right fails at once, before anything
// starts.
func TestBadArgumentsFailAtOnceAndStartNothing(t *testing.T) {
	before := runtime.NumGoroutine()
	ctx := context.Background()
	p := newPool(t, indexFactory, worker.Options{})
	for name, call := range map[string]func() error{
		"Submit of a nil task": func() error { _, err := worker.Submit[int, int](ctx, p, nil); return err },
		"Run of a nil task":    func() error { _, err := worker.Run[int, int](ctx, p, nil); return err },
		"Submit to a nil pool": func() error { _, err := worker.Submit[int](ctx, nil, index); return err },
		"NewWorker with a nil factory": func() error {
			_, err := worker.NewWorker[int](ctx, nil, worker.Options{})
			return err
		},
		"NewWorker with MaxWorkers -1": func() error {
			_, err := worker.NewWorker(ctx, func(context.Context) (int, error) { return 0, nil }, worker.Options{MaxWorkers: -1})
			return err
		},
		"NewPool with 2^40 workers": func() error {
			_, err := worker.NewPool(ctx, indexFactory, worker.Options{MaxWorkers: 1 << 40})
			return err
		},
		"NewPool with one worker too many": func() error {
			_, err := worker.NewPool(ctx, indexFactory, worker.Options{Mode: worker.OnDemand, MaxWorkers: worker.MaxWorkersLimit + 1})
			return err
		},
		"New with a bad option": func() error { _, err := worker.New(ctx, worker.Options{MaxWorkers: -1}); return err },
		"Wait with an unknown ReturnWhen": func() error {
			_, _, err := worker.Wait(ctx, []*worker.Future[int]{submit(t, p, index)}, worker.ReturnWhen(9))
			return err
		},
	} {
		if err := call(); !errors.Is(err, worker.ErrInvalidOptions) {
			t.Errorf("%s: %v, want ErrInvalidOptions", name, err)
		}
	}
	if st := p.Stats().Workers[0]; st.Dispatched != 1 {
		t.Errorf("a bad submission was dispatched: %+v", st)
	}
	if n := runtime.NumGoroutine(); n > before+1 {
		t.Errorf("%d goroutines started by bad arguments", n-before-1)
	}
}

func TestTheLargestPoolIsAccepted(t *testing.T) {
	p := newPool(t, indexFactory, worker.Options{Mode: worker.OnDemand, MaxWorkers: worker.MaxWorkersLimit})
	if n := len(p.Stats().Workers); n != worker.MaxWorkersLimit {
		t.Fatalf("%d worker slots", n)
	}
}

func TestAnUnknownLimitPoolBalancingIsRejected(t *testing.T) {
	ls, _ := concurry.NewLimitSet(nil)
	if _, err := concurry.NewLimitPool([]*concurry.LimitSet{ls}, concurry.WithBalancing(99)); !errors.Is(err, concurry.ErrInvalidLimit) {
		t.Fatalf("WithBalancing(99): %v", err)
	}
}

func TestFuncOfNilIsRefused(t *testing.T) {
	p, err := worker.New(context.Background(), worker.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer p.Stop(context.Background())
	if _, err := worker.Submit(context.Background(), p, worker.Func[int](nil)); !errors.Is(err, worker.ErrInvalidOptions) {
		t.Fatalf("Submit(Func(nil)) = %v", err)
	}
}
