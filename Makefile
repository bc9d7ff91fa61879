# glmd — `make test` is the one test command (.ci/run calls it).
GO      ?= go
PKGS    ?= ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X github.com/open-autoglm/glmd/internal/version.Version=$(VERSION) \
           -X github.com/open-autoglm/glmd/internal/version.Commit=$(COMMIT)

.PHONY: all build test lint fmt vet staticcheck unit fuzz bench clean

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/glmd ./cmd/glmctl

# test = the checks CI runs: formatting, vet (also for other platforms and
# without cgo), staticcheck, then every test with the race detector.
test: lint unit

lint: fmt vet staticcheck

fmt:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi

vet:
	$(GO) vet $(PKGS)
	GOOS=darwin $(GO) vet $(PKGS)
	CGO_ENABLED=0 $(GO) build $(PKGS)

staticcheck:
	$(GO) tool staticcheck $(PKGS)

unit:
	$(GO) test -race -count=1 -timeout 20m $(PKGS)

# fuzz runs each fuzzer for FUZZTIME (the seeds alone run in `make test`).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzLoadTask$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzParseByteSize$$' -fuzztime $(FUZZTIME)

# bench runs the benchmarks docs/benchmarks.md reports (needs a C compiler).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 10x ./supervisor ./agent ./internal/tasklog ./internal/config ./internal/confwatch
	./bench/idle.sh 500 60

clean:
	rm -rf bin .glmd
