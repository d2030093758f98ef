// Command llm-batch sends a batch of prompts to a simulated LLM provider with
// three regions and two accounts, each with Bedrock-style quotas, and never
// gets a 429: every call is made with the OpenAI SDK (openai-go) through an
// httplimit.Transport, which acquires its request, input tokens, output
// tokens and connection from a concurry.LimitPool over one LimitSet per
// (region, account), sends it to the one that granted them, settles the real
// usage the answer reports (unused output is refunded), and heeds the
// provider's rate-limit headers and 429s.
//
// The provider is a real HTTP server on 127.0.0.1 inside the program, with
// its own accounting; a minute lasts one second, with quotas to match, so the
// default run takes about 17 seconds. With -naive the same batch runs with no
// limiter, and the provider answers 429 to a good share of the calls. With
// -foreign 0.3 a client the limiter never sees spends 30 % of every quota;
// -feedback=false shows what the provider's headers buy. -metrics serves
// the limiter's Prometheus metrics while the batch runs.
//
// The exit status is 0 when every prompt was answered, 1 when some failed
// (or the run was interrupted), 2 for bad flags, and 3 when, without -naive,
// a 429 reached the SDK, or the provider sent one without -foreign (more
// than 1 % of the calls with it).
//
//	go run ./examples/llm-batch                    # 2,000 prompts, TokenBucket, 0 × 429
//	go run ./examples/llm-batch -naive             # the same with no limiter
//	go run ./examples/llm-batch -foreign 0.3       # 30 % of each quota spent unseen
//	go run ./examples/llm-batch -foreign 0.3 -feedback=false
//	go run ./examples/llm-batch -metrics :9464     # /metrics while it runs
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

	"github.com/concurry/concurry"
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
	if o.metrics != "" && !cfg.Naive {
		m, err := startMetrics(o.metrics, &cfg)
		if err != nil {
			fmt.Fprintln(stderr, "llm-batch: -metrics:", err)
			return 1
		}
		where := stdout
		if o.json {
			where = stderr // stdout holds the JSON alone
		}
		register := cfg.Observe
		cfg.Observe = func(p *concurry.LimitPool) error { // before the first prompt is sent
			if err := register(p); err != nil {
				return err
			}
			_, err := fmt.Fprintf(where, "Metrics: %s (Prometheus), while the batch runs.\n", m.url)
			return err
		}
		defer func() {
			if err := m.Close(); err != nil {
				fmt.Fprintln(stderr, "llm-batch: -metrics:", err)
			}
		}()
	}
	return runBatch(ctx, cfg, o, stdout, stderr, terminal)
}

// runBatch runs the batch, reports it and returns the exit code.
func runBatch(ctx context.Context, cfg batch.Config, o options, stdout, stderr io.Writer, terminal bool) int {
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
	if msg := broken(cfg, s); msg != "" {
		fmt.Fprintln(stderr, "llm-batch:", msg)
		return 3
	}
	return 0
}

// broken says how a run through the limiter broke its promise, or "": a
// 429 that reached the SDK; without a foreign client, any 429 from the
// provider; with one, 429s on more than 1 % of the calls (each of which
// the limiter's transport retried, on another account when one could
// grant). A naive run promises nothing.
func broken(cfg batch.Config, s batch.Summary) string {
	rejected := s.Total.ProviderRejected
	switch {
	case cfg.Naive || rejected == 0:
		return ""
	case s.SDKErrors > 0:
		return fmt.Sprintf("the provider sent %d × 429 and %d reached the SDK", rejected, s.SDKErrors)
	case cfg.ForeignShare == 0:
		return fmt.Sprintf("the provider sent %d × 429 despite the limits: calls took longer than -delay %v from grant to provider",
			rejected, cfg.Delay)
	case 100*rejected > s.Calls:
		return fmt.Sprintf("the provider sent %d × 429, more than 1%% of the %d calls: the feedback did not keep up with the foreign client",
			rejected, s.Calls)
	}
	return ""
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
