package main

import (
	"bytes"
	"context"
	"encoding/json"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, o, err := parseFlags([]string{"-n", "10", "-workers", "3", "-algorithm", "gcra", "-balancing", "random", "-json", "-minute", "2s"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, 10, cfg.Prompts)
	assert.Equal(t, 3, cfg.Workers)
	assert.Equal(t, concurry.GCRA, cfg.Algorithm)
	assert.Equal(t, concurry.Random, cfg.Balancing)
	assert.Equal(t, 2*time.Second, cfg.Minute)
	assert.Equal(t, 50*time.Millisecond, cfg.Delay)
	assert.True(t, o.json)

	for _, args := range [][]string{{"-algorithm", "fastest"}, {"-balancing", "leastbusy"}, {"-delay", "1s"}, {"extra"}} {
		_, _, err := parseFlags(args, &stderr)
		assert.Error(t, err, "%v", args)
	}
}

func TestBarRender(t *testing.T) {
	b := newBar(&bytes.Buffer{})
	line := b.render(batch.Progress{Done: 50, Total: 200, RateLimited: 3, Elapsed: 5 * time.Second})
	assert.Equal(t, " 50/200 [███████░░░░░░░░░░░░░░░░░░░░░░░]  25%   10.0 req/s  elapsed 5s  ETA 15s  429s: 3", line)
	assert.Contains(t, b.render(batch.Progress{Total: 200}), "ETA ?")
}

func TestRunPrintsJSON(t *testing.T) {
	var stdout, stderr bytes.Buffer
	code := run(context.Background(), []string{"-n", "60", "-json"}, &stdout, &stderr, true)
	require.Equal(t, 0, code, stderr.String())
	var s batch.Summary
	require.NoError(t, json.Unmarshal(stdout.Bytes(), &s), "stdout holds the JSON summary alone, without a progress bar")
	assert.Equal(t, 60, s.Completed)
	assert.Zero(t, s.RateLimited)
	assert.Len(t, s.Endpoints, 6)
	assert.Equal(t, "TokenBucket", s.Algorithm)
}
