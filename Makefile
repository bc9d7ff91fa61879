# glmd — `make test` is the one test command (.ci/run calls it).
GO      ?= go
PKGS    ?= ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
LDFLAGS := -X github.com/open-autoglm/glmd/internal/version.Version=$(VERSION) \
           -X github.com/open-autoglm/glmd/internal/version.Commit=$(COMMIT)

.PHONY: all build test lint fmt vet staticcheck unit fuzz bench clean vm-test

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/glmd ./cmd/glmctl

# test = the checks CI runs: formatting, vet (also for other platforms and
# without cgo), staticcheck, every test with the race detector, then the
# cgroup v2 tests inside a User-Mode-Linux guest (the host runs v1).
test: lint unit vm-test

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

# TestV2_* need a pure cgroup v2 tree: vm-test runs them.
unit:
	$(GO) test -race -count=1 -timeout 20m -skip '^TestV2_' $(PKGS)

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

# vm-test runs the VM_RUN tests of VM_PKGS as root on a pure cgroup v2 tree, inside a User-Mode-Linux kernel
# (.ci/cgroup2-vm; the first run downloads Debian's user-mode-linux and busybox-static with apt-get and caches
# them). VM_RUN is taken as written ($(value ...)), so VM_RUN='^TestV2_OOM$' needs no $$.
VM_PKGS ?= ./cgroup ./supervisor ./agent
VM_RUN  ?= ^TestV2_
vm-test:
	GO='$(GO)' ./.ci/cgroup2-vm -run '$(value VM_RUN)' $(VM_PKGS)
