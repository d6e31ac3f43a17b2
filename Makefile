# Make is the command index: every target CI and developers use.
GO ?= go
PKGS := ./...

.PHONY: run test test-deps test-short lint bench build fleet fmt clean web fuzz lab chaos soak

run: ## run gridd on the embedded default with the demo city
	$(GO) run ./cmd/gridd

test: test-deps ## the test suite, as CI runs it (screenshots and other artifacts in .test-output/)
	mkdir -p .test-output
	$(GO) test -race -count=1 -timeout 30m -artifacts -outputdir $(CURDIR)/.test-output $(PKGS)

test-deps: ## the headless Chromium the dashboard's test drives, and CJK fonts for its screenshots (Debian packages)
	@command -v chromium >/dev/null || apt-get install -y -q chromium fonts-noto-cjk >/dev/null || \
		{ apt-get update -q && apt-get install -y -q chromium fonts-noto-cjk >/dev/null; }

test-short: ## without the race detector (faster while editing)
	$(GO) test -count=1 $(PKGS)

lint: ## formatting, vet and the layering rule
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)
	$(GO) test -count=1 -run TestLayering ./cmd/internal/node/

bench: ## benchmarks with their limits measured in the same run (see BENCHMARKS.md)
	$(GO) test -run '^$$' -bench . -benchtime 1x -timeout 90m ./cmd/internal/node/ ./cmd/gridctl/

fleet: ## 200 simulated handsets against a running gridd (GRID_URL, default http://127.0.0.1:8080)
	$(GO) run ./cmd/gridctl fleet --devices 200 --duration 60s

lab: ## gridd, gridctl, gridlab and nats-server (built from the nats-server module) into ./bin, for gridlab
	$(GO) build -trimpath -o bin/ ./cmd/gridd ./cmd/gridctl ./cmd/gridlab github.com/nats-io/nats-server/v2

CHAOS_DEVICES ?= 200
CHAOS_DURATION ?= 150s
chaos: lab ## NATS, FerretDB and gridd as processes; kill -9 each under a fleet of 200 handsets; prints the counts
	bin/gridlab chaos --devices $(CHAOS_DEVICES) --duration $(CHAOS_DURATION)

SOAK_DEVICES ?= 500
SOAK_DURATION ?= 10m
soak: lab ## 500 handsets on a good network for 10 minutes against the embedded default: latency, memory, goroutines
	bin/gridlab soak --devices $(SOAK_DEVICES) --duration $(SOAK_DURATION)

build: ## binaries into ./bin
	$(GO) build -trimpath -o bin/ ./cmd/gridd ./cmd/gridctl

FUZZTIME ?= 30s
fuzz: ## each fuzz target for FUZZTIME (default 30s); seed corpora in each package's testdata/fuzz
	$(GO) test -run '^$$' -fuzz '^FuzzPushDecoding$$' -fuzztime $(FUZZTIME) ./services/fieldsync/
	$(GO) test -run '^$$' -fuzz '^FuzzReportArgs$$' -fuzztime $(FUZZTIME) ./services/incident/
	$(GO) test -run '^$$' -fuzz '^FuzzMoveArgs$$' -fuzztime $(FUZZTIME) ./services/incident/
	$(GO) test -run '^$$' -fuzz '^FuzzCreateUnitArgs$$' -fuzztime $(FUZZTIME) ./services/directory/
	$(GO) test -run '^$$' -fuzz '^FuzzCreateUserArgs$$' -fuzztime $(FUZZTIME) ./services/directory/
	$(GO) test -run '^$$' -fuzz '^FuzzComplaintArgs$$' -fuzztime $(FUZZTIME) ./services/complaint/
	$(GO) test -run '^$$' -fuzz '^FuzzHouseholdField$$' -fuzztime $(FUZZTIME) ./services/household/

web: ## re-fetch Apache ECharts from the lockfile into the dashboard's assets (needs npm; the copy is committed)
	cd mobile-api/dashboard && npm ci --ignore-scripts --no-audit --no-fund
	cp mobile-api/dashboard/node_modules/echarts/dist/echarts.common.min.js mobile-api/dashboard/assets/echarts.min.js
	cp mobile-api/dashboard/node_modules/echarts/LICENSE mobile-api/dashboard/assets/echarts.LICENSE.txt
	cd mobile-api/dashboard/assets && sha256sum echarts.min.js > echarts.min.js.sha256

fmt:
	gofmt -w $$(git ls-files '*.go')

clean:
	rm -rf bin data
