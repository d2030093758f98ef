# make test is the one test command: vet, gofmt, and every test with the race detector.
GO ?= go

.PHONY: test vet fmt-check unit fuzz bench bench-peers

test: vet fmt-check unit

vet:
	$(GO) vet ./...

fmt-check:
	@out=$$(gofmt -l .); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi

unit:
	$(GO) test -race -count=1 ./...

bench:
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./...

bench-peers:
	cd bench && $(GO) test -run '^$$' -bench . -benchmem -count 5 ./...
