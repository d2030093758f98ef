// Command httpserver is a small JSON API served with the chi router
// (github.com/go-chi/chi/v5) and limited per API key by
// httplimit.Middleware: each key may make Requests calls per Window and
// have InFlight of them running at once; a call over its limits gets 429
// Too Many Requests with Retry-After and the IETF RateLimit fields, and the
// health check is not limited.
//
//	go run ./examples/httpserver                 # serves on 127.0.0.1:8080
//	curl -H 'X-Api-Key: alice' localhost:8080/v1/hello
//	go run ./examples/httpserver -demo           # sends itself a few calls and prints the answers
//
// The exit status is 0 on success (or an interrupt), 1 when the server
// fails, 2 for bad flags.
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"time"

	"github.com/go-chi/chi/v5"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/httplimit"
)

// The limits of every API key.
const (
	Requests = 3           // calls per Window
	Window   = time.Minute //
	InFlight = 2           // calls running at once
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	code := run(ctx, os.Args[1:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}

// run is the program: it returns the exit code.
func run(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("httpserver", flag.ContinueOnError)
	fs.SetOutput(stderr)
	addr := fs.String("addr", "127.0.0.1:8080", "the `address` to serve on")
	demo := fs.Bool("demo", false, "serve on a free port of 127.0.0.1, send a few calls, print the answers and exit")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return 0
		}
		return 2
	}
	if *demo {
		*addr = "127.0.0.1:0"
	}
	api, err := newAPI()
	if err != nil {
		fmt.Fprintln(stderr, "httpserver:", err)
		return 1
	}
	defer func() { _ = api.keyed.Close() }()
	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		fmt.Fprintln(stderr, "httpserver:", err)
		return 1
	}
	srv := &http.Server{Handler: api.router, ReadHeaderTimeout: 5 * time.Second}
	served := make(chan error, 1)
	go func() { served <- srv.Serve(ln) }()
	base := "http://" + ln.Addr().String()
	if *demo {
		err = runDemo(ctx, base, stdout)
	} else {
		fmt.Fprintf(stdout, "httpserver: serving on %s; each X-Api-Key may make %d calls per %v, %d at once\n", base, Requests, Window, InFlight)
		select {
		case <-ctx.Done():
		case err = <-served:
		}
	}
	shutdown, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if serr := srv.Shutdown(shutdown); err == nil && serr != nil {
		err = serr
	}
	if err != nil && !errors.Is(err, http.ErrServerClosed) {
		fmt.Fprintln(stderr, "httpserver:", err)
		return 1
	}
	return 0
}

// api is the server: its router and the limits of its keys.
type api struct {
	router http.Handler
	keyed  *concurry.Keyed
}

// newAPI returns the router: GET /healthz, unlimited, and under /v1 the
// limited API, GET /v1/hello.
func newAPI() (*api, error) {
	keyed, err := concurry.NewKeyed(concurry.KeyedOptions{Limits: []concurry.Limit{
		concurry.CallLimit{Window: Window, Capacity: Requests},
		concurry.ResourceLimit{Key: "in_flight", Capacity: InFlight},
	}})
	if err != nil {
		return nil, err
	}
	r := chi.NewRouter()
	r.Get("/healthz", func(w http.ResponseWriter, _ *http.Request) { _, _ = io.WriteString(w, "ok\n") })
	r.Route("/v1", func(r chi.Router) {
		r.Use(httplimit.Middleware(httplimit.Options{Keyed: keyed, Identity: httplimit.Header("X-Api-Key")}))
		r.Get("/hello", func(w http.ResponseWriter, r *http.Request) {
			w.Header().Set("Content-Type", "application/json")
			fmt.Fprintf(w, "{\"hello\":%q}\n", r.Header.Get("X-Api-Key"))
		})
	})
	return &api{router: r, keyed: keyed}, nil
}

// runDemo sends a few calls to the server at base and prints the answers:
// alice's fourth call in a minute is refused, bob has his own limits, a
// call without a key is a 400, and the health check is never limited.
func runDemo(ctx context.Context, base string, w io.Writer) error {
	calls := []struct{ path, key string }{
		{"/v1/hello", "alice"}, {"/v1/hello", "alice"}, {"/v1/hello", "alice"}, {"/v1/hello", "alice"},
		{"/v1/hello", "bob"}, {"/v1/hello", ""}, {"/healthz", ""},
	}
	c := &http.Client{Timeout: 10 * time.Second}
	defer c.CloseIdleConnections()
	for _, call := range calls {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, base+call.path, nil)
		if err != nil {
			return err
		}
		if call.key != "" {
			req.Header.Set("X-Api-Key", call.key)
		}
		resp, err := c.Do(req)
		if err != nil {
			return err
		}
		_, _ = io.Copy(io.Discard, resp.Body)
		_ = resp.Body.Close()
		line := fmt.Sprintf("GET %-10s key %-6q %d", call.path, call.key, resp.StatusCode)
		if resp.StatusCode == http.StatusTooManyRequests {
			line += fmt.Sprintf("  Retry-After: %s  RateLimit: %s", resp.Header.Get("Retry-After"), resp.Header.Get("RateLimit"))
		}
		if _, err := fmt.Fprintln(w, line); err != nil {
			return err
		}
	}
	return nil
}
