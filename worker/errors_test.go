package worker_test

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/concurry/concurry/worker"
)

func TestSentinelsMatchThroughWrapping(t *testing.T) {
	cause := errors.New("cause")
	for _, c := range []struct {
		err      error
		sentinel error
	}{
		{worker.ErrStopped, worker.ErrStopped},
		{worker.ErrInvalidOptions, worker.ErrInvalidOptions},
		{worker.ErrFactory, worker.ErrFactory},
		{&worker.PanicError{Value: "x"}, worker.ErrPanic},
		{worker.RetryAfter(time.Second, cause), worker.ErrRetryAfter},
		{worker.RetryAfter(time.Second, cause), cause},
		{&worker.RejectedError[int]{Results: []int{1}}, worker.ErrRejected},
		{&worker.GatherError{Errors: []error{nil, cause}}, cause},
		{&worker.PanicError{Value: cause}, cause},
		{worker.ErrGoexit, worker.ErrGoexit},
		{worker.ErrDeadlock, worker.ErrDeadlock},
		{&worker.RejectedError[int]{Results: []int{1}, Panics: []*worker.PanicError{{Value: cause}}}, worker.ErrPanic},
		{&worker.RejectedError[int]{Results: []int{1}, Panics: []*worker.PanicError{{Value: cause}}}, cause},
	} {
		wrapped := fmt.Errorf("context: %w", c.err)
		if !errors.Is(wrapped, c.sentinel) {
			t.Errorf("%v does not match %v when wrapped", c.err, c.sentinel)
		}
		if !strings.HasPrefix(c.sentinel.Error(), "concurry: ") && c.sentinel != cause {
			t.Errorf("%q lacks the concurry: prefix", c.sentinel)
		}
	}
	var ra *worker.RetryAfterError
	if err := fmt.Errorf("w: %w", worker.RetryAfter(3*time.Second, nil)); !errors.As(err, &ra) || ra.Wait != 3*time.Second {
		t.Fatalf("RetryAfterError not found in %v", err)
	}
	if got := worker.RetryAfter(time.Second, nil).Error(); got != "concurry: retry after 1s" {
		t.Errorf("message %q", got)
	}
	if got := worker.RetryAfter(time.Second, cause).Error(); got != "cause (retry after 1s)" {
		t.Errorf("message %q", got)
	}
	if got := (&worker.GatherError{Errors: []error{nil}}).Error(); got != "concurry: no task failed" {
		t.Errorf("message %q", got)
	}
	if (&worker.PanicError{Value: "x"}).Unwrap() != nil {
		t.Error("a non-error panic value unwraps to nothing")
	}
}
