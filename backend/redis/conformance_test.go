package redis_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	cr "github.com/concurry/concurry/backend/redis"
	"github.com/concurry/concurry/backend/redis/redistest"
	"github.com/concurry/concurry/internal/backendtest"
)

// caps are what the Redis backend claims of the contract: every part.
var caps = backendtest.Capabilities{Facts: true, Feedback: true}

// runSuite runs the conformance suite, each case with a backend of its own
// key prefix on client, running its entry points as functions or, with
// scripts, as scripts.
func runSuite(t *testing.T, client redis.UniversalClient, scripts bool) {
	run := fmt.Sprintf("conf/%d", time.Now().UnixNano())
	for _, c := range backendtest.Cases() {
		t.Run(c.Name, func(t *testing.T) {
			t.Parallel()
			b := cr.New(client, cr.Options{Prefix: run + "/" + c.Name})
			if scripts {
				cr.UseScripts(b)
			}
			c.Test(t, &backendtest.Env{T: t, Backend: b, Caps: caps})
			if cr.UsesScripts(b) != scripts {
				t.Errorf("the backend runs scripts: %v, want %v", cr.UsesScripts(b), scripts)
			}
		})
	}
}

func TestConformanceSingleNode(t *testing.T) { runSuite(t, redistest.Start(t).Client(), false) }

func TestConformanceCluster(t *testing.T) { runSuite(t, redistest.StartCluster(t).Client(), false) }

// TestConformanceScripts runs the suite as on a server without functions.
func TestConformanceScripts(t *testing.T) { runSuite(t, redistest.Start(t).Client(), true) }
