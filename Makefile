# cutover: build, test, run the demo, benchmark.
# Tools are pinned and installed into ./bin through the Go module proxy.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c

BUF_VERSION            := v1.75.0
PROTOC_GEN_GO_VERSION  := v1.36.12
PROTOC_GEN_GRPC_VERSION := v1.6.2
GRPC_GATEWAY_VERSION   := v2.32.0

BIN      := $(CURDIR)/bin
SERVICES := cutover extractor transformer validator loader orchestrator gateway
# go.work has no root module: iterate over its modules.
MODULES   = $(shell go list -m -f '{{.Dir}}')
GO_TEST_FLAGS ?= -count=1 -timeout 20m

.PHONY: all tools deps generate lint check-generated build vet test run bench chaos clean

all: build

$(BIN)/.tools-$(BUF_VERSION)-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GRPC_VERSION)-$(GRPC_GATEWAY_VERSION):
	@mkdir -p $(BIN)
	GOBIN=$(BIN) go install github.com/bufbuild/buf/cmd/buf@$(BUF_VERSION)
	GOBIN=$(BIN) go install google.golang.org/protobuf/cmd/protoc-gen-go@$(PROTOC_GEN_GO_VERSION)
	GOBIN=$(BIN) go install google.golang.org/grpc/cmd/protoc-gen-go-grpc@$(PROTOC_GEN_GRPC_VERSION)
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-grpc-gateway@$(GRPC_GATEWAY_VERSION)
	GOBIN=$(BIN) go install github.com/grpc-ecosystem/grpc-gateway/v2/protoc-gen-openapiv2@$(GRPC_GATEWAY_VERSION)
	@touch $@

tools: $(BIN)/.tools-$(BUF_VERSION)-$(PROTOC_GEN_GO_VERSION)-$(PROTOC_GEN_GRPC_VERSION)-$(GRPC_GATEWAY_VERSION)

# PostgreSQL binaries and psql from Debian when missing.
deps:
	@deploy/local/ensure-deps.sh

generate: tools
	rm -rf gen/cutover gen/openapiv2/*.json
	PATH=$(BIN):$$PATH $(BIN)/buf generate

lint: tools
	$(BIN)/buf lint

# The committed gen/ must be exactly what the contracts generate.
check-generated: generate
	@git diff --exit-code -- gen || { echo "gen/ is stale: run make generate and commit" >&2; exit 1; }
	@test -z "$$(git status --porcelain -- gen)" || { git status --porcelain -- gen; echo "gen/ has uncommitted files" >&2; exit 1; }

build:
	@mkdir -p $(BIN)
	@for s in $(SERVICES); do (cd services/$$s && go build -o $(BIN)/$$s ./cmd/$$s); done
	@cd services/cutover && go build -o $(BIN)/cutoverctl ./cmd/cutoverctl
	@echo "built: $(SERVICES) cutoverctl in bin/"

vet:
	@for m in $(MODULES); do (cd $$m && go vet ./...); done
	@test -z "$$(gofmt -l proto services gen 2>/dev/null)" || { gofmt -l services gen; echo "gofmt needed" >&2; exit 1; }

# Every module's `go test -json` goes through .ci/testcount, which prints a
# line per package, the output of failed tests and each skip with its reason,
# and closes with "tests: N passed, K failed, M skipped" (top-level tests).
# With CI=true a test skipped for a missing database, or any skip not listed
# in .ci/allowed-skips, fails the run. TEST_COUNTS=<file> also writes the
# closing line there: .ci/run holds it against .ci/test-floor.
TEST_COUNTS ?=

test: deps lint check-generated vet build
	@GOWORK=off go build -o $(BIN)/testcount .ci/testcount.go
	@{ rc=0; for m in $(MODULES); do echo "== $$m"; (cd $$m && go test -json $(GO_TEST_FLAGS) ./... 2>&1) || rc=1; done; exit $$rc; } \
		| $(BIN)/testcount -allowed-skips .ci/allowed-skips $(if $(TEST_COUNTS),-counts '$(TEST_COUNTS)')

run: deps build
	@deploy/local/run-demo.sh

bench: deps build
	@deploy/local/bench.sh

# Fault-injection suite (services/cutover/chaos, README "Chaos"): kills,
# PostgreSQL restarts and network faults during a job; its last line is
# "faults N, lost L, duplicated D". CUTOVER_CHAOS_SEED=<n> replays a run.
chaos: deps
	@log=$$(mktemp); trap 'rm -f "$$log"' EXIT; \
	(cd services/cutover && CI=true CUTOVER_CHAOS_FULL=1 go test -count=1 -timeout 30m -v -run '^TestChaos$$' ./chaos) 2>&1 | tee "$$log"; \
	grep -E '^faults [0-9]+, lost [0-9]+, duplicated [0-9]+$$' "$$log" | tail -1

# clean, not stop: a cluster run as root from a checkout its user cannot
# reach lives in /tmp, not .data (deploy/local/env.sh, server_dir).
clean:
	@deploy/local/pg.sh clean || true
	@deploy/local/mariadb.sh clean || true
	rm -rf .data
