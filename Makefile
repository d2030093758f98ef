# make test is the one test command: vet, gofmt, every test with the race
# detector, a short fuzz run of the wire decoder, and the runnable examples.
GO ?= go
FUZZTIME ?= 10s

.PHONY: test vet fmt-check unit fuzz examples bench bench-peers

test: vet fmt-check unit fuzz examples

vet:
	$(GO) vet ./...
	cd bench && $(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 ./...

fuzz:
	$(GO) test -run '^$$' -fuzz '^FuzzDecodeFrame$$' -fuzztime $(FUZZTIME) ./internal/wire/

# Every program under examples/ runs here (distributed starts its own redis-server,
# which .ci/run installs); vet builds them all.
examples:
	$(GO) run ./examples/quickstart
	$(GO) run ./examples/multiprocess
	$(GO) run ./examples/distributed
	$(GO) run ./examples/llm-batch   # the README's first command; exits 3 on any 429

# The core's benchmarks live in bench/, beside their peers, so that one run
# measures both.
bench: bench-peers
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

bench-peers:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
