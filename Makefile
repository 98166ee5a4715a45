# Shoal — run `make help` for the targets.
SHELL := /bin/bash
GO    ?= go
BIN   := $(CURDIR)/bin
# Multi-process suites live in */e2e packages behind the `multiprocess` tag and
# run one package at a time, so their timing does not compete on 2 cores.
E2E_PKGS = $(shell $(GO) list -tags multiprocess ./... | grep -E '/e2e(/|$$)')

BINARIES := \
	coordinator/cmd/shoal-coordinator \
	agent/cmd/shoal-agent \
	lb/cmd/shoal-lb \
	deploy/bench/cmd/bench-backend \
	deploy/cmd/shoal-localcloud \
	deploy/cmd/shoal-demoapp \
	deploy/cmd/shoal-demo \
	deploy/cmd/shoal-chaos \
	deploy/cmd/shoal-soak \
	deploy/bench/cmd/shoal-loadgen

.PHONY: help build test test-unit test-e2e lint generate check-generated tidy-check bench bench-lb bench-console ui-screenshot fuzz demo chaos soak clean

help: ## list the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-16s %s\n", $$1, $$2}'

# Binaries are static (no cgo): what Packer bakes runs on any glibc, and
# nothing Shoal links needs cgo. Only `go test -race` uses cgo.
build: ## build every binary into bin/ (static, CGO_ENABLED=0)
	@mkdir -p $(BIN)
	@for d in $(BINARIES); do \
		if [ -d $$d ]; then CGO_ENABLED=0 $(GO) build -o $(BIN)/ ./$$d || exit 1; fi; \
	done
	@# Multi-process tests crash the leader at exact points with this build;
	@# production builds ignore SHOAL_FAILPOINT.
	@CGO_ENABLED=0 $(GO) build -tags failpoints -o $(BIN)/shoal-coordinator-failpoints ./coordinator/cmd/shoal-coordinator

test: build test-unit test-e2e ## the README test command: unit tests with -race, then the multi-process suites

test-unit: ## go test -race ./..., and the proxy package again against --h1-engine raw
	$(GO) test -race -count=1 -timeout 10m ./...
	$(GO) test -race -count=1 -timeout 10m ./lb/internal/proxy -args -h1engine=raw

test-e2e: build ## multi-process tests of the real binaries (loopback only)
	@if [ -n "$(E2E_PKGS)" ]; then \
		SHOAL_BIN=$(BIN) $(GO) test -tags multiprocess -count=1 -p 1 -timeout 10m $(E2E_PKGS); \
	fi

lint: check-generated tidy-check ## go vet, staticcheck, buf lint, buf format, stale generated code
	$(GO) vet ./...
	$(GO) vet -tags multiprocess ./...
	$(GO) tool staticcheck ./...
	$(GO) tool buf lint
	$(GO) tool buf format -d --exit-code

generate: ## regenerate proto/gen with buf
	$(GO) tool buf generate

check-generated: ## fail when proto/gen is not what buf generates
	$(GO) tool buf generate
	git diff --exit-code -- proto/gen
	@test -z "$$(git status --porcelain -- proto/gen)" || (git status --porcelain -- proto/gen; exit 1)

tidy-check: ## fail when go.mod or go.sum is not tidy
	$(GO) mod tidy -diff

bench: build ## benchmarks; prints tables
	@if [ -x deploy/bench/raft.sh ]; then deploy/bench/raft.sh; fi
	@if [ -x deploy/bench/simulate.sh ]; then deploy/bench/simulate.sh; fi
	@if [ -x deploy/bench/agent.sh ]; then deploy/bench/agent.sh; fi
	@if [ -x deploy/bench/ingest.sh ]; then deploy/bench/ingest.sh && INGEST_TLS=0 deploy/bench/ingest.sh; fi
	@if [ -x deploy/bench/enroll.sh ]; then deploy/bench/enroll.sh; fi
	@if [ -x deploy/bench/reaction.sh ]; then deploy/bench/reaction.sh; fi
	@$(MAKE) --no-print-directory bench-lb

bench-lb: build ## shoal-lb next to nginx and haproxy (installs them with apt if missing)
	@if [ -x deploy/bench/lb.sh ]; then deploy/bench/lb.sh; else echo "bench-lb: deploy/bench/lb.sh not present yet"; fi

bench-console: build ## measured run: the serving node's CPU with 50 open console fleet pages
	SHOAL_BIN=$(BIN) SHOAL_CONSOLE_COST=1 $(GO) test -tags multiprocess -count=1 -run TestFiftyFleetPagesCost -v ./deploy/e2e/console

ui-screenshot: build ## the README's console screenshot (docs/console-fleet.png) during the demo's spike, in headless Chromium
	SHOAL_BIN=$(BIN) SHOAL_CONSOLE_SCREENSHOT=$(CURDIR)/docs/console-fleet.png $(GO) test -tags multiprocess -count=1 -timeout 8m -run TestDemoSpikeScreenshot -v ./deploy/e2e/console

fuzz: ## every fuzz target in turn, FUZZTIME each (default 30s); crashers are kept in the package's testdata/fuzz
	FUZZTIME=$(or $(FUZZTIME),30s) GO=$(GO) deploy/bench/fuzz.sh

demo: build ## the whole system on the local cloud through a load spike; DEMO_DURATION=90s shortens it; DEMO_COMPARE=aws runs AWS target tracking beside it (under 8 min); DEMO_SCENARIO=spot: two Spot interruptions under steady load at 6; report in demo-report/
	$(BIN)/shoal-demo --bin $(BIN) --report-dir $(CURDIR)/demo-report

chaos: build ## the system under a seeded nemesis, invariants checked; SEED=n reproduces, CHAOS_DURATION=30m runs long, CHAOS_NODES=5; report in chaos-report/
	SEED=$(or $(SEED),1) CHAOS_DURATION=$(or $(CHAOS_DURATION),5m) CHAOS_NODES=$(or $(CHAOS_NODES),3) \
		$(BIN)/shoal-chaos --bin $(BIN) --report-dir $(CURDIR)/chaos-report

soak: build ## the whole system under load with a spike every 4 min for SOAK_DURATION (default 30m): RSS, fds and goroutines per process, slopes per hour; report in soak-report/
	SOAK_DURATION=$(or $(SOAK_DURATION),30m) $(BIN)/shoal-soak --bin $(BIN) --report-dir $(CURDIR)/soak-report

clean: ## remove build output
	rm -rf $(BIN)
