# Trent: make deps build test run bench fuzz lint chaos interop
GO              ?= go
STATICCHECK     ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHSTAT       ?= golang.org/x/perf/cmd/benchstat@v0.0.0-20260908200009-22c9c6c9d4da
BENCHCOUNT      ?= 6
FUZZTIME        ?= 10s
export CGO_ENABLED := 1

.PHONY: deps build test run bench bench-peers fuzz lint demo-enclave chaos interop

## deps: install SoftHSM2, OpenSC and a C compiler if missing (apt-get, brew)
deps:
	@bash scripts/deps.sh

## build: the trent binary in bin/
build:
	$(GO) build -o bin/trent ./cmd/trent

## test: lint, then every test with the race detector on real SoftHSM tokens
test: deps lint
	@bash scripts/test.sh

## run: the local dev cluster (trent dev; DEVFLAGS=--hybrid for a domain that requires hybrid sessions)
run: deps build
	./bin/trent dev $(DEVFLAGS)

## demo-enclave: a data owner, a parent instance and simulated Nitro Enclaves against a fresh temporary dev cluster
demo-enclave: deps build
	$(GO) run ./scripts/demo-enclave -trent bin/trent

## bench: backend vs bare PKCS#11 (benchstat medians of BENCHCOUNT runs), process scaling, … and the side by side with local-kms (bench-peers)
bench: deps
	BENCHCOUNT=$(BENCHCOUNT) BENCHSTAT=$(BENCHSTAT) bash scripts/bench.sh

## chaos: the fault-injection suite, every scenario (docs/reliability.md); reports, histories and logs in .chaos/
chaos: deps
	$(GO) test -count=1 -timeout 30m -v -run TestChaos ./chaos/ -args -chaos.full -chaos.report $(CURDIR)/.chaos

## bench-peers: only the side-by-side benchmark of issue 17 (Trent, local-kms, moto; PEERS_ROUNDS, PEERS_DURATION)
bench-peers: deps
	bash scripts/bench-peers.sh

## interop: real KMS clients at pinned versions (AWS CLI v1 and v2, boto3, the AWS SDK for JavaScript v3, the AWS Encryption SDK for JavaScript, SOPS, go-kms-wrapping) against a fresh dev cluster; clients cached in .interop/ (docs/conformance.md, Clients)
interop: deps build
	@bash scripts/interop/run.sh

## fuzz: every fuzz target for FUZZTIME each
fuzz: deps
	@bash scripts/fuzz.sh $(FUZZTIME)

## lint: gofmt, go vet, staticcheck (pinned)
lint:
	@out=$$(gofmt -l .); \
	  if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	$(GO) run $(STATICCHECK) ./...
