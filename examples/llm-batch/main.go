// Command llm-batch sends a batch of prompts to a simulated LLM provider with
// three regions and two accounts, each with Bedrock-style quotas, and never
// gets a 429: every call acquires its request, input tokens, output tokens
// and connection from a concurry.LimitPool over one LimitSet per (region,
// account), and reports its real usage so the unused output is refunded.
//
// The provider is a real HTTP server on 127.0.0.1 inside the program, with
// its own accounting; a minute lasts one second, with quotas to match, so the
// default run takes about 16 seconds. With -naive the same batch runs with no
// limiter, and the provider answers 429 to a good share of the calls.
//
// The exit status is 0 when every prompt was answered, 1 when some failed
// (or the run was interrupted), 2 for bad flags, and 3 when, without -naive,
// the provider sent a 429 all the same.
//
//	go run ./examples/llm-batch                    # 2,000 prompts, TokenBucket, 0 × 429
//	go run ./examples/llm-batch -naive             # the same with no limiter
//	go run ./examples/llm-batch -algorithm gcra -balancing random -json
package main

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/signal"

	"github.com/concurry/concurry/examples/llm-batch/batch"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr, isTerminal(os.Stdout))
	stop()
	os.Exit(code)
}

// isTerminal reports whether f may be a terminal: a character device. The
// progress bar checks further, and draws nothing on /dev/null.
func isTerminal(f *os.File) bool {
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// run is the program: it returns the exit code. terminal says whether
// stdout is a terminal, where a live progress bar is drawn.
func run(ctx context.Context, args []string, stdout, stderr io.Writer, terminal bool) int {
	cfg, o, err := parseFlags(args, stderr)
	if errors.Is(err, flag.ErrHelp) {
		return 0
	}
	if err != nil {
		fmt.Fprintln(stderr, "llm-batch:", err)
		fmt.Fprintln(stderr, "Run llm-batch -h for the flags.")
		return 2
	}
	if !o.json {
		if err := cfg.WriteHeader(stdout); err != nil {
			fmt.Fprintln(stderr, "llm-batch:", err)
			return 2
		}
	}
	var bar *progressBar
	if terminal && !o.json {
		bar = newProgressBar(stdout, cfg.Prompts)
		cfg.Progress = bar.update
	}
	s, runErr := batch.Run(ctx, cfg)
	if bar != nil {
		bar.finish()
	}
	if runErr != nil && s.Prompts == 0 {
		fmt.Fprintln(stderr, "llm-batch:", runErr)
		return 1
	}
	if err := report(stdout, s, o); err != nil {
		fmt.Fprintln(stderr, "llm-batch:", err)
		return 1
	}
	if runErr != nil {
		fmt.Fprintln(stderr, "llm-batch:", runErr)
		return 1
	}
	if !cfg.Naive && s.Total.ProviderRejected > 0 {
		fmt.Fprintf(stderr, "llm-batch: the provider sent %d × 429 despite the limits: calls took longer than -delay %v from grant to provider\n",
			s.Total.ProviderRejected, cfg.Delay)
		return 3
	}
	return 0
}

// report writes the summary, and the chart if asked for.
func report(w io.Writer, s batch.Summary, o options) error {
	if o.svg != "" {
		f, err := os.Create(o.svg)
		if err != nil {
			return err
		}
		err = s.WriteSVG(f)
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return err
		}
	}
	if o.json {
		enc := json.NewEncoder(w)
		enc.SetIndent("", "  ")
		return enc.Encode(s)
	}
	if _, err := fmt.Fprintln(w); err != nil {
		return err
	}
	if err := s.WriteText(w); err != nil {
		return err
	}
	if o.svg != "" {
		_, err := fmt.Fprintf(w, "Chart: %s\n", o.svg)
		return err
	}
	return nil
}
