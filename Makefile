# The one documented way to do each thing. Postgres and Redis on localhost
# (or `make compose-up`) are all `run` and `test` need.
SHELL := /bin/bash
GO ?= go
DATABASE_URL ?= postgres://postgres@127.0.0.1:5432/csat?sslmode=disable
SURVEYS ?= 1000000

export DATABASE_URL

# The test packages use fixed database numbers of one Redis and flush them:
# two test runs against the same Redis at once (two checkouts, a helper's
# worktree) would flush each other's queues, so they take turns. Point
# TEST_REDIS_ADDR at another Redis to run beside one.
TEST_REDIS_ADDR ?= 127.0.0.1:6379
export TEST_REDIS_ADDR
TESTLOCK := flock /tmp/csat-test-$(subst :,-,$(TEST_REDIS_ADDR)).lock

FUZZTIME ?= 60s

.PHONY: fuzz faults run test unit generate check-generated lint vet fmt migrate build bench compose-up compose-down dashboard screenshots

## run: create the database if missing, migrate, serve on :8080
run:
	$(GO) run ./cmd/csat serve

## test: vet, staticcheck, generated code up to date, all tests with -race
test: vet lint check-generated
	$(TESTLOCK) $(GO) test -race -count=1 -timeout 10m ./...

## unit: tests without the race detector (quicker while developing)
unit:
	$(TESTLOCK) $(GO) test -count=1 ./...

build:
	$(GO) build -o bin/csat ./cmd/csat

migrate:
	$(GO) run ./cmd/csat migrate

## generate: gqlgen, then graph/internal/seqlists (see gqlgen.yml)
generate:
	$(GO) generate ./...

## check-generated: regenerating must not change committed files
check-generated:
	@if [ -f gqlgen.yml ]; then \
		$(GO) generate ./... && \
		git diff --exit-code --stat -- graph/ || { echo "generated code is stale: run 'make generate' and commit"; exit 1; }; \
	fi

vet:
	$(GO) vet ./...

lint:
	$(GO) tool staticcheck ./...
	@test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }

fmt:
	gofmt -w $$(git ls-files '*.go')

## bench: load SURVEYS surveys into csat_bench, measure every scenario, write bench/results/latest.json
## (BENCH_DATABASE_URL, BENCH_REDIS_URL override where; the bench database and Redis DB are recreated)
bench:
	$(GO) run ./cmd/csatbench -surveys $(SURVEYS) $(BENCH_FLAGS)

compose-up:
	docker compose up -d

compose-down:
	docker compose down

## dashboard: re-vendor the dashboard's chart library (pinned in dashboard/package.json,
## locked in dashboard/package-lock.json) into dashboard/static/vendor; commit the result.
## Running the service needs no npm: the vendored files are embedded.
dashboard:
	cd dashboard && npm ci --no-audit --no-fund --ignore-scripts
	sed '/^\/\/# sourceMappingURL=/d' dashboard/node_modules/chart.js/dist/chart.umd.min.js > dashboard/static/vendor/chart.umd.min.js
	cp dashboard/node_modules/chart.js/LICENSE.md dashboard/static/vendor/chart.js.LICENSE.md
	cp dashboard/node_modules/@kurkle/color/LICENSE.md dashboard/static/vendor/kurkle-color.LICENSE.md

## screenshots: save screenshots into docs/ with headless Chromium (apt-get install chromium)
screenshots:
	$(GO) test -count=1 ./dashboard -run '^TestScreenshot$$' -args -screenshots=../docs
	$(GO) test -count=1 ./pages -run '^TestScreenshots$$' -args -screenshots=../docs

## fuzz: run every fuzz target for FUZZTIME each (their seeds also run in `make test`)
fuzz:
	@set -e; for pkg in $$($(GO) list ./...); do \
		for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
			echo "== $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f\$$" -fuzztime $(FUZZTIME) $$pkg; \
		done; \
	done

## faults: the fault scenarios at full size (real csat processes; Postgres outages through a TCP proxy, never a restart)
faults:
	FAULTS_SCALE=$${FAULTS_SCALE:-5} $(TESTLOCK) $(GO) test -count=1 -timeout 20m -run 'Outage|MidWave|MixedTraffic' -v ./hardening/
