package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/internal/backendtest"
	"github.com/concurry/concurry/internal/redistest"
)

// runSuite runs the conformance suite, each case with a backend of its own
// key prefix on client.
func runSuite(t *testing.T, client redis.UniversalClient) {
	run := fmt.Sprintf("conf/%d", time.Now().UnixNano())
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			b := cr.New(client, cr.Options{Prefix: run + "/" + c.Name})
			c.Test(t, &backendtest.Env{T: t, Backend: b})
		})
	}
}

func TestConformanceSingleNode(t *testing.T) { runSuite(t, redistest.Start(t).Client()) }

func TestConformanceCluster(t *testing.T) { runSuite(t, redistest.StartCluster(t).Client()) }
