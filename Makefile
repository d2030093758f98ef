# make test is the one test command. It runs, in every module of the
# repository (the core, backend/redis, examples, bench): go vet, gofmt,
# staticcheck, and every test with the race detector; then a short fuzz run of
# the decoders and the runnable examples. Without redis-server (and no way
# to install it) it runs everything else and says what it skipped; under CI
# (CI set) a missing redis-server fails the run.
GO ?= go
FUZZTIME ?= 10s
STATICCHECK_VERSION ?= v0.8.2
MODULES := . backend/redis examples bench extra/concurryotel extra/concurryprom
GOBIN := $(shell $(GO) env GOPATH)/bin
STATICCHECK := $(GOBIN)/staticcheck

.PHONY: test vet fmt-check staticcheck unit fuzz examples bench bench-redis bench-all

test: vet fmt-check staticcheck unit fuzz examples

vet:
	@set -e; for m in $(MODULES); do echo "go vet ($$m)"; (cd $$m && $(GO) vet ./...); done

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

$(STATICCHECK):
	$(GO) install honnef.co/go/tools/cmd/staticcheck@$(STATICCHECK_VERSION)

staticcheck: $(STATICCHECK)
	@set -e; for m in $(MODULES); do echo "staticcheck ($$m)"; (cd $$m && $(STATICCHECK) ./...); done

# The Redis module's tests start their own redis-server processes. The HTTP
# load test runs once more without -race, at the issue's full scale (10,000
# identities over three processes; 1,000 under the race detector).
unit:
	$(GO) test -race -count=1 ./...
	cd examples && $(GO) test -race -count=1 ./...
	cd extra/concurryotel && $(GO) test -race -count=1 ./...
	cd extra/concurryprom && $(GO) test -race -count=1 ./...
	@rc=0; scripts/redis-available || rc=$$?; \
	if [ $$rc = 0 ]; then cd backend/redis && $(GO) test -race -count=1 ./... && \
		$(GO) test -count=1 -run '^TestHTTPLoadAcrossProcesses$$' . ; \
	elif [ $$rc != 1 ]; then exit 1; fi

# Short fuzz runs of the decoders that read what another process or an
# upstream sends: the Unix-socket wire frames, and the LLM presets' scan of
# JSON bodies (checked against encoding/json).
fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) ./backend/unixsock/internal/wire/
	$(GO) test -run '^$$' -fuzz '^FuzzJSONMembers$$' -fuzztime $(FUZZTIME) ./httplimit/

# Every program under examples/ runs here; distributed starts its own
# redis-server, so it runs only where one is installed.
examples:
	cd examples && $(GO) run ./quickstart
	cd examples && $(GO) run ./multiprocess
	cd examples && $(GO) run ./httpserver -demo
	@rc=0; scripts/redis-available 2>/dev/null || rc=$$?; \
	if [ $$rc = 0 ]; then cd examples && $(GO) run ./distributed; \
	elif [ $$rc != 1 ]; then exit 1; else echo "make: SKIPPED examples/distributed (no redis-server)"; fi
	cd examples && $(GO) run ./llm-batch   # the README's first command; exits 3 on any 429

# The core's benchmarks live in bench/, beside their peers, so that one run
# measures both. make bench runs the in-memory targets in PASSES interleaved
# passes (every benchmark once per pass, ours and the peers alike) and prints
# the ratio table with pass/fail per target (bench/ratios); bench-all runs
# every benchmark of the bench module (Redis, unixsock, workers, HTTP, too).
PASSES ?= 10
CORE_BENCH := ^Benchmark(Peer(RateAllowN|RateAllowNParallel|SemaphoreTryAcquireRelease|HandRolled3|HandRolled3Parallel)|TryAcquireRelease|TryAcquireReleaseParallel|TryAcquireUpdateRelease|ResourceTryAcquireRelease|AcquireUpdateRelease3|AcquireUpdateRelease3Parallel|AcquireUpdateRelease3NilHooks)$$
WORKER_BENCH := ^BenchmarkWorkerRoundTrip$$/^workers=[18]$$/^serial$$/^impl=(concurry|channel)$$

bench:
	cd bench && $(GO) test -c -o bench.test . && \
	for i in $$(seq $(PASSES)); do ./bench.test -test.run '^$$' -test.bench '$(CORE_BENCH)' -test.benchmem; \
		./bench.test -test.run '^$$' -test.bench '$(WORKER_BENCH)' -test.benchmem; done > core-bench.txt && \
	$(GO) run ./ratios < core-bench.txt

# bench-redis runs the Redis rows the same way, on a redis-server the
# benchmarks start: the acquisitions pinned to one CPU with the server (which
# inherits the affinity: both processes' work, not this VM's wake-ups), the
# HTTP middleware as it is served.
REDIS_BENCH := ^BenchmarkRedis$$/^(RedisRateAllow|RedisRateAllowWrites|CycleRateOnly|Acquire3Limits)/serial$$
PIN := $(shell command -v taskset >/dev/null 2>&1 && echo taskset -c 1)
bench-redis:
	cd bench && $(GO) test -c -o bench.test . && \
	for i in $$(seq $(PASSES)); do $(PIN) ./bench.test -test.run '^$$' -test.bench '$(REDIS_BENCH)' -test.benchmem; \
		./bench.test -test.run '^$$' -test.bench '^BenchmarkHTTPMiddlewareRedis$$/^(Concurry|PeerUlule|Floor)$$/^(1id|10kid)$$' -test.benchmem; done > redis-bench.txt && \
	$(GO) run ./ratios < redis-bench.txt

bench-all:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
