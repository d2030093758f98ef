package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/concurry/concurry"
	"github.com/concurry/concurry/examples/llm-batch/batch"
	"github.com/concurry/concurry/extra/concurryprom"
)

// metricsServer serves the limiter's Prometheus metrics at /metrics while
// a batch runs: a concurryprom.Collector fed by the LimitSets' hooks, with
// the LimitPool (and through it every set) registered for its gauges.
type metricsServer struct {
	url    string // http://host:port/metrics
	srv    *http.Server
	served chan struct{} // closed when Serve returns
	err    error         // why Serve returned, read after served is closed
}

// startMetrics listens on addr (host:port; ":9464" listens on every
// interface) and serves /metrics, and sets cfg's Hooks and Observe so that
// the batch's limiter feeds it.
func startMetrics(addr string, cfg *batch.Config) (*metricsServer, error) {
	c, err := concurryprom.NewCollector(concurryprom.Options{})
	if err != nil {
		return nil, err
	}
	reg := prometheus.NewRegistry()
	if err := reg.Register(c); err != nil {
		return nil, err
	}
	cfg.Hooks = c.Hooks()
	cfg.Observe = func(p *concurry.LimitPool) error { return c.RegisterPool(p, "llm-batch") }
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle("/metrics", promhttp.HandlerFor(reg, promhttp.HandlerOpts{}))
	m := &metricsServer{
		url:    "http://" + ln.Addr().String() + "/metrics",
		srv:    &http.Server{Handler: mux, ReadHeaderTimeout: 5 * time.Second},
		served: make(chan struct{}),
	}
	go func() {
		defer close(m.served)
		if err := m.srv.Serve(ln); !errors.Is(err, http.ErrServerClosed) {
			m.err = err
		}
	}()
	return m, nil
}

// Close stops the server, waiting up to 5 seconds for scrapes in flight,
// and returns why it stopped serving before, if it did.
func (m *metricsServer) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	err := m.srv.Shutdown(ctx)
	if err != nil {
		_ = m.srv.Close()
	}
	<-m.served
	return errors.Join(err, m.err)
}
