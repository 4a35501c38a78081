# berth — run `make help` for the targets.
GO ?= go
PG_URL ?= postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable

.PHONY: help run test test-pg lint generate assets build bench

help: ## show this help
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-10s %s\n", $$1, $$2}'

run: ## run the server on ./berth-data with demo data
	$(GO) run ./cmd/berth serve --demo

build: ## build ./bin/berth
	$(GO) build -o bin/berth ./cmd/berth

test: ## run every test with the race detector (PostgreSQL parts skip unless BERTH_TEST_DATABASE_URL is set)
	$(GO) test -race -count=1 ./...

test-pg: ## run every test, PostgreSQL included
	BERTH_TEST_DATABASE_URL='$(PG_URL)' BERTH_REQUIRE_POSTGRES=1 $(GO) test -race -count=1 ./...

lint: ## go vet, gofmt and staticcheck
	$(GO) vet ./...
	@test -z "$$(gofmt -l .)" || (gofmt -l . && exit 1)
	$(GO) run honnef.co/go/tools/cmd/staticcheck@v0.7.0 ./...

generate: ## regenerate the GraphQL code (gqlgen)
	cd graphql && $(GO) generate .

assets: ## rebuild the embedded GraphiQL assets (needs npm)
	bash web/graphiql/build.sh

BENCHFLAGS ?=
bench: ## run the Go benchmarks (BENCHFLAGS='-benchtime 2000x -count 3'; PostgreSQL too with BERTH_TEST_DATABASE_URL); load tests: docs/PERFORMANCE.md
	$(GO) test -run '^$$' -bench . -benchmem $(BENCHFLAGS) ./...

CHAOS_RESTARTS ?= 50
CHAOS_CHECKS ?= 2000
.PHONY: chaos
chaos: ## long reliability run: kill -9 x$(CHAOS_RESTARTS) under load, $(CHAOS_CHECKS) state-machine cases, the fault table (docs/RELIABILITY.md)
	BERTH_CHAOS_RESTARTS=$(CHAOS_RESTARTS) $(GO) test -count=1 -timeout 60m -v -run 'TestChaosKill9' ./cmd/berth/
	BERTH_TEST_DATABASE_URL='$(PG_URL)' $(GO) test -count=1 -timeout 60m -v -run 'TestBookingStateMachine|TestFaultTable$$|TestProviderOutage' ./airline/ \
		-rapid.checks=$(CHAOS_CHECKS) -rapid.steps=60
