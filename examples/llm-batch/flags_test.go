package main

import (
	"bytes"
	"context"
	"errors"
	"flag"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"github.com/concurry/concurry"
)

func TestParseFlags(t *testing.T) {
	var stderr bytes.Buffer
	cfg, o, err := parseFlags([]string{"-n", "10", "-workers", "3", "-algorithm", "gcra", "-balancing", "random", "-json", "-minute", "2s",
		"-foreign", "0.3", "-feedback=false", "-stream", "-metrics", "127.0.0.1:0"}, &stderr)
	require.NoError(t, err)
	assert.Equal(t, 0.3, cfg.ForeignShare)
	assert.True(t, cfg.NoFeedback)
	assert.True(t, cfg.Stream)
	assert.Equal(t, "127.0.0.1:0", o.metrics)
	assert.Equal(t, 10, cfg.Prompts)
	assert.Equal(t, 3, cfg.Workers)
	assert.Equal(t, concurry.GCRA, cfg.Algorithm)
	assert.Equal(t, concurry.Random, cfg.Balancing)
	assert.Equal(t, 2*time.Second, cfg.Minute)
	assert.Equal(t, 50*time.Millisecond, cfg.Delay)
	assert.True(t, o.json)
	assert.Empty(t, stderr.String(), "parseFlags reports nothing itself")
}

// badFlags are command lines that must fail at once, each with the flag
// that is wrong: a zero that the batch would silently replace with its
// default, a negative, a value out of range, a name that means nothing.
var badFlags = map[string][]string{
	"-n":         {"-n", "0"},
	"-n ":        {"-n", "-5"},
	"-n  ":       {"-n", "100001"},
	"-n   ":      {"-n", "many"},
	"-workers":   {"-workers", "0"},
	"-workers ":  {"-workers", "-1"},
	"-minute":    {"-minute", "0"},
	"-minute ":   {"-minute", "-1s"},
	"-minute  ":  {"-minute", "2h"},
	"-delay":     {"-delay", "0"},
	"-delay ":    {"-delay", "-5ms"},
	"-delay  ":   {"-delay", "1s"},
	"-seed":      {"-seed", "0"},
	"-seed ":     {"-seed", "-1"},
	"-algorithm": {"-algorithm", "fastest"},
	"-balancing": {"-balancing", "leastactive"},
	"-bogus":     {"-bogus"},
	"-foreign":   {"-foreign", "-0.1"},
	"-foreign ":  {"-foreign", "0.95"},
	"-foreign  ": {"-foreign", "NaN"},
	"-metrics":   {"-naive", "-metrics", ":0"},
	"extra":      {"extra"},
}

func TestParseFlagsRejectsBadValues(t *testing.T) {
	for want, args := range badFlags {
		_, _, err := parseFlags(args, &bytes.Buffer{})
		require.Error(t, err, "%q", args)
		assert.Contains(t, err.Error(), strings.TrimSpace(want), "%q: the error names the flag", args)
	}
	// The delay is checked against the minute given, and the client's
	// limits must keep room for a call after their margin for the delay.
	_, _, err := parseFlags([]string{"-minute", "10ms", "-delay", "20ms"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "less than -minute 10ms")
	_, _, err = parseFlags([]string{"-minute", "100ms", "-delay", "99ms"}, &bytes.Buffer{})
	assert.ErrorContains(t, err, "leaves nothing after a margin")
}

// Each bad command line exits with 2 before anything runs, and says what is
// wrong on one line with one "llm-batch:" prefix, then where the usage is.
func TestRunReportsBadFlagsOnce(t *testing.T) {
	for _, args := range badFlags {
		var stdout, stderr bytes.Buffer
		code := run(context.Background(), args, &stdout, &stderr, false)
		assert.Equal(t, 2, code, "%q", args)
		assert.Empty(t, stdout.String(), "%q: nothing ran", args)
		lines := strings.Split(strings.TrimSuffix(stderr.String(), "\n"), "\n")
		require.Len(t, lines, 2, "%q: %s", args, stderr.String())
		assert.True(t, strings.HasPrefix(lines[0], "llm-batch: "), "%q: %s", args, lines[0])
		assert.Equal(t, 1, strings.Count(stderr.String(), "llm-batch:"), "%q: one prefix: %s", args, lines[0])
		assert.Equal(t, "Run llm-batch -h for the flags.", lines[1])
	}
}

func TestRunHelpSaysWhatTheProgramDoes(t *testing.T) {
	for _, h := range []string{"-h", "-help", "--help"} {
		var stdout, stderr bytes.Buffer
		require.Equal(t, 0, run(context.Background(), []string{h}, &stdout, &stderr, false), h)
		assert.Empty(t, stdout.String())
		usage := stderr.String()
		assert.True(t, strings.HasPrefix(usage, "Usage: llm-batch [flags]\n"), usage)
		assert.Contains(t, usage, "simulated LLM provider")
		assert.Contains(t, usage, "never gets a 429")
		assert.Contains(t, usage, "Exit status")
		for _, name := range []string{"n", "workers", "algorithm", "balancing", "naive", "json", "svg", "minute", "delay", "seed", "foreign", "feedback", "stream", "metrics"} {
			assert.Regexp(t, "\n  -"+name+"[ \n]", usage, "flag -%s is listed", name)
		}
		assert.NotContains(t, usage, "llm-batch:", "no error prefix in the usage")
	}
	_, _, err := parseFlags([]string{"-h"}, &bytes.Buffer{})
	assert.True(t, errors.Is(err, flag.ErrHelp))
}
