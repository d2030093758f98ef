package memory_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/backend/memory"
)

// Two LimitSets of one name on one Backend share their limits: what one
// takes, the other sees. Without WithBackend a LimitSet is private.
func ExampleNew() {
	ctx := context.Background()
	b := memory.New()
	limits := []concurry.Limit{concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 1000}}
	api, _ := concurry.NewLimitSet(limits, concurry.WithName("api"), concurry.WithBackend(b))
	same, _ := concurry.NewLimitSet(limits, concurry.WithName("api"), concurry.WithBackend(b))
	defer api.Close()
	defer same.Close()

	a, _ := api.Acquire(ctx, concurry.Amounts{"tokens": 400})
	_ = a.Update(concurry.Amounts{"tokens": 400})
	_ = a.Release()
	_, err := same.TryAcquire(ctx, concurry.Amounts{"tokens": 700}) // 600 are left
	fmt.Println(errors.Is(err, concurry.ErrWouldBlock))
	// Output: true
}
