// Command quickstart is the README's quickstart: three limits acquired
// together, real usage reported, the unused tokens refunded.
package main

import (
	"context"
	"fmt"
	"time"

	"github.com/concurry/concurry"
)

func main() {
	limits, err := concurry.NewLimitSet([]concurry.Limit{
		concurry.CallLimit{Window: time.Minute, Capacity: 500},                                              // requests/min
		concurry.RateLimit{Key: "tokens", Window: time.Minute, Capacity: 100_000, Algorithm: concurry.GCRA}, // tokens/min
		concurry.ResourceLimit{Key: "connections", Capacity: 10},                                            // concurrent
	})
	if err != nil {
		panic(err)
	}
	ctx := context.Background()
	err = limits.Do(ctx, concurry.Amounts{"tokens": 2_000}, func(ctx context.Context, acq *concurry.Acquisition) error {
		// ... call the API; it reports 1,234 tokens used ...
		return acq.Update(concurry.Amounts{"tokens": 1_234}) // the other 766 are refunded
	})
	st, _ := limits.Stats(ctx)
	tokens, _ := st.Limit("tokens")
	fmt.Println("err:", err, "tokens available:", tokens.Available)
}
