# streamd — see README.md. Every target runs from the repository root.
#
#   make run        build bin/streamd and serve on 127.0.0.1:8080 (admin :9090)
#   make test       go vet and staticcheck, then every test with the race detector
#   make lint       staticcheck (honnef.co/go/tools, pinned, from the module proxy)
#   make build      bin/streamd (PGO from profiles/default.pgo when present)
#   make bench      benchmarks, 5 runs each, saved to bench/latest.txt
#   make fuzz       every Fuzz target for FUZZTIME (default 30s) each
#   make clean      remove bin/

GO       ?= go
BIN      ?= bin/streamd
FUZZTIME ?= 30s
# ARGS are passed to `streamd serve` by `make run`, e.g. ARGS="--config my.yaml".
ARGS     ?=

# Version stamped into the binary (streamd version). Lazily evaluated, so
# `make build VERSION=v1.2.3` runs no git command.
VERSION  ?= $(shell git describe --always --dirty 2>/dev/null || echo dev)
# Profile-guided optimisation: profiles/default.pgo when it exists (filled
# by `make profile` once the load generator lands), else off. (-pgo=auto
# would only look for default.pgo in cmd/streamd/, not in profiles/.)
PGO      := $(or $(wildcard profiles/default.pgo),off)

# bash with pipefail, so that `go test … | tee` fails when go test fails.
SHELL       := bash
.SHELLFLAGS := -eu -o pipefail -c

.DEFAULT_GOAL := build
.PHONY: run build test test-deps test-peers lint bench bench-compare loadtest profile fuzz clean

build:
	$(GO) build -trimpath -pgo=$(PGO) -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/streamd

# `make run` builds without PGO: a PGO build recompiles the standard library
# with the profile (minutes on 2 cores the first time); `make build` is the
# release build.
run:
	$(GO) build -trimpath -ldflags "-X main.version=$(VERSION)" -o $(BIN) ./cmd/streamd
	@echo "streamd: connect to ws://127.0.0.1:8080/ws — admin (health, metrics, pprof) at http://127.0.0.1:9090"
	@echo "         (the defaults; flags in ARGS or a config may change them: the 'listening' log line has the bound addresses)"
	./$(BIN) serve $(ARGS)

test: test-deps
	$(GO) vet ./...
	$(MAKE) lint
	$(GO) test -race -count=1 -timeout 12m ./...
	$(MAKE) test-peers

# staticcheck, pinned; `go run` fetches it from the Go module proxy once.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2

lint:
	$(GO) run $(STATICCHECK) ./...
	cd bench/peers && $(GO) run $(STATICCHECK) ./...

# The reference servers of bench-compare live in their own module
# (bench/peers) so their dependencies stay out of the engine's.
test-peers:
	cd bench/peers && $(GO) vet ./... && $(GO) test -count=1 ./...

# Side-by-side load runs: streamd and the reference servers (gorilla, nbio,
# gnet+gobwas, centrifuge), server on CPU 0 and generator on CPU 1, each
# scenario REPEAT times; writes bench/results/<time>/table.md (medians).
bench-compare:
	bash bench/compare.sh

# Prerequisites of the tests that need more than Go: Node's ws package (npm,
# into e2e/node/node_modules) and Debian's chromium for the e2e clients.
# Idempotent and quiet when everything is present.
test-deps:
	bash scripts/test-deps.sh

bench:
	@mkdir -p bench
	$(GO) test -run '^$$' -bench . -benchmem -count 5 ./... | tee bench/latest.txt

# A short default load run: bin/streamd on 127.0.0.1:18080 (pinned to CPU 0
# when there are two), the echo scenario from CPU 1 (1,000 connections,
# 20,000 msgs/s, 5 s), then the idle scenario (10,000 joined connections,
# server RSS per connection). CONNS/RATE override; results in bench/results/.
loadtest: build
	$(GO) build -o bin/streamload ./cmd/streamload
	bash scripts/loadtest.sh

# Load against bin/streamd while capturing CPU, heap, allocs, mutex and block
# profiles into profiles/; refreshes profiles/default.pgo for `make build`.
profile:
	bash scripts/profile.sh

# Lists every Fuzz target (go test -list prints a package's names, then its
# "ok <package>" line) and runs each on its own for FUZZTIME.
fuzz:
	@targets=$$($(GO) test -list '^Fuzz' ./... | awk '/^Fuzz/ { f[n++] = $$1 } /^ok / { for (i = 0; i < n; i++) print $$2 " " f[i]; n = 0 }'); \
	if [ -z "$$targets" ]; then echo "fuzz: no Fuzz targets"; exit 0; fi; \
	while read -r pkg name; do \
		echo "== $$pkg $$name ($(FUZZTIME))"; \
		$(GO) test -run '^$$' -fuzz "^$$name\$$" -fuzztime $(FUZZTIME) "$$pkg"; \
	done <<< "$$targets"

clean:
	rm -rf bin/
