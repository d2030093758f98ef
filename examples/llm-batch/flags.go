package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"time"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/batch"
)

// Bounds of the flags' values.
const (
	maxPrompts = 100_000
	maxWorkers = 1_000
	maxForeign = 0.9
	minMinute  = time.Millisecond
	maxMinute  = time.Hour
	minuteText = "1ms to 1h" // minMinute to maxMinute, as people write them
)

// usageIntro is the start of the -h text; the flags follow it.
const usageIntro = `Usage: llm-batch [flags]

Sends a batch of prompts to a simulated LLM provider and never gets a 429.
The provider is a real HTTP server on 127.0.0.1 with 3 regions × 2 accounts,
each with Bedrock-style quotas: requests, input tokens and output tokens per
minute, and a cap on connections. Every call is made with the OpenAI SDK
(openai-go) through an httplimit.Transport, which acquires its request,
tokens and connection from a concurry LimitPool over one LimitSet per
(region, account), sends it to the one that granted it, settles its real
usage (unused output tokens are refunded) and heeds the provider's
rate-limit headers and 429s. A minute lasts 1s (-minute), so the default
run takes about 17 seconds. With -naive the same batch runs with no
limiter, and gets 429s. With -foreign 0.3 a client the limiter never sees
spends 30% of every quota: the headers keep the 429s to a handful, which
-feedback=false shows.

It prints the limits, a live progress bar on a terminal, then a table of what
each (region, account) served and the share of its quotas used.

Exit status: 0 when every prompt was answered; 1 when some failed or the run
was interrupted; 2 for bad flags; 3 when, without -naive, a 429 reached the
SDK, or the provider sent a 429 without -foreign, or on more than 1% of the
calls with it.

Flags:
`

// options are the command line's settings beyond batch.Config.
type options struct {
	json    bool
	svg     string
	metrics string // the address to serve /metrics on; "" for none
}

// parseFlags turns the command line into a Config. It reports nothing
// itself, but for -h, whose usage text it writes to stderr before it returns
// flag.ErrHelp: every other error comes back, to be reported once.
func parseFlags(args []string, stderr io.Writer) (batch.Config, options, error) {
	var cfg batch.Config
	var o options
	fs := flag.NewFlagSet("llm-batch", flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	fs.IntVar(&cfg.Prompts, "n", 2000, fmt.Sprintf("number of prompts in the batch, 1 to %d", maxPrompts))
	fs.IntVar(&cfg.Workers, "workers", 48, fmt.Sprintf("number of workers, 1 to %d", maxWorkers))
	alg := fs.String("algorithm", "tokenbucket", "algorithm of the client's limits: tokenbucket, gcra, slidingwindow, leakybucket or fixedwindow")
	bal := fs.String("balancing", "roundrobin", "how the LimitPool picks a (region, account): roundrobin or random")
	fs.BoolVar(&cfg.Naive, "naive", false, "send the batch with no limiter, to see the 429s")
	fs.Float64Var(&cfg.ForeignShare, "foreign", 0, "share of each account's quotas that a foreign client, unseen by the limiter, spends: 0 to 0.9")
	feedback := fs.Bool("feedback", true, "let the limiter heed the provider's rate-limit headers and 429s; -feedback=false shows what that buys")
	fs.BoolVar(&cfg.Stream, "stream", false, "stream every answer (server-sent events) rather than take it in one body")
	fs.StringVar(&o.metrics, "metrics", "", "serve Prometheus metrics of the limiter on this `address` (host:port, such as :9464) at /metrics while the batch runs")
	fs.BoolVar(&o.json, "json", false, "print the summary as JSON, and no progress bar")
	fs.StringVar(&o.svg, "svg", "", "write a chart of output tokens per minute per region to this SVG `file`")
	fs.DurationVar(&cfg.Minute, "minute", time.Second, "how long a quota minute lasts, "+minuteText)
	fs.DurationVar(&cfg.Delay, "delay", 50*time.Millisecond,
		"longest delay from a grant to the provider's count of the call that the client's margin covers; more than 0, less than -minute")
	seed := fs.Uint64("seed", 1, "seed of the prompts and of the provider's latencies and outputs, at least 1")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			writeUsage(stderr, fs)
		}
		return cfg, o, err
	}
	if fs.NArg() > 0 {
		return cfg, o, fmt.Errorf("unexpected arguments: %q", fs.Args())
	}
	cfg.Seed = *seed
	cfg.NoFeedback = !*feedback
	var err error
	if cfg.Algorithm, err = concurry.ParseAlgorithm(*alg); err != nil {
		return cfg, o, badFlag("algorithm", *alg, "want tokenbucket, gcra, slidingwindow, leakybucket or fixedwindow")
	}
	if cfg.Balancing, err = batch.ParseBalancing(*bal); err != nil {
		return cfg, o, badFlag("balancing", *bal, "want roundrobin or random")
	}
	if err := checkFlags(cfg); err != nil {
		return cfg, o, err
	}
	if o.metrics != "" && cfg.Naive {
		return cfg, o, badFlag("metrics", o.metrics, "the naive run has no limiter to observe: drop -naive or -metrics")
	}
	return checkConfig(cfg, o)
}

// checkFlags reports the first value out of its flag's range. The zero
// values of batch.Config mean "the default", so 0 is refused here rather
// than silently replaced.
func checkFlags(cfg batch.Config) error {
	switch {
	case cfg.Prompts < 1 || cfg.Prompts > maxPrompts:
		return badFlag("n", cfg.Prompts, fmt.Sprintf("want 1 to %d prompts", maxPrompts))
	case cfg.Workers < 1 || cfg.Workers > maxWorkers:
		return badFlag("workers", cfg.Workers, fmt.Sprintf("want 1 to %d workers", maxWorkers))
	case cfg.Minute < minMinute || cfg.Minute > maxMinute:
		return badFlag("minute", cfg.Minute, "want "+minuteText)
	case cfg.Delay <= 0 || cfg.Delay >= cfg.Minute:
		return badFlag("delay", cfg.Delay, fmt.Sprintf("want more than 0 and less than -minute %v", cfg.Minute))
	case cfg.Seed < 1:
		return badFlag("seed", cfg.Seed, "want at least 1")
	case !(cfg.ForeignShare >= 0 && cfg.ForeignShare <= maxForeign): // also refuses NaN
		return badFlag("foreign", cfg.ForeignShare, fmt.Sprintf("want 0 to %v", maxForeign))
	}
	return nil
}

// checkConfig returns cfg with its defaults, once batch has found that it
// can run: that the client's limits, after their margin for -delay, still
// hold a call.
func checkConfig(cfg batch.Config, o options) (batch.Config, options, error) {
	cfg, err := cfg.WithDefaults()
	if err == nil && !cfg.Naive {
		_, err = cfg.ClientLimits()
	}
	return cfg, o, err
}

// badFlag returns the error of a flag's value, worded as the flag package
// words the values it cannot parse.
func badFlag(name string, value any, want string) error {
	if s, ok := value.(string); ok {
		value = fmt.Sprintf("%q", s)
	}
	return fmt.Errorf("invalid value %v for flag -%s: %s", value, name, want)
}

// writeUsage writes the -h text: what the program does, then its flags.
func writeUsage(w io.Writer, fs *flag.FlagSet) {
	_, _ = io.WriteString(w, usageIntro)
	fs.SetOutput(w)
	fs.PrintDefaults()
	fs.SetOutput(io.Discard)
}
