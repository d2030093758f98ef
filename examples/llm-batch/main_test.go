package main

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
	"go.uber.org/goleak"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

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

// Where stdout is no terminal — a file, a pipe, a test's buffer — it holds
// the header and the summary, and nothing of a progress bar, even when the
// caller took it for a terminal (a character device such as /dev/null).
func TestRunPrintsTextAndNoBarWithoutATerminal(t *testing.T) {
	for _, terminal := range []bool{false, true} {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), []string{"-n", "30"}, &stdout, &stderr, terminal)
		require.Equal(t, 0, code, stderr.String())
		out := stdout.String()
		assert.True(t, strings.HasPrefix(out, "llm-batch: 30 prompts to a simulated LLM provider"), out)
		assert.Contains(t, out, "peak conns")
		assert.Contains(t, out, "30 prompts answered of 30")
		assert.NotContains(t, out, "\r")
		assert.NotContains(t, out, "\x1b")
		assert.NotContains(t, out, "█")
		assert.Empty(t, stderr.String())
	}
}
