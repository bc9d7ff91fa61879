# glmd — `make test` is the one test command (.ci/run calls it).
GO      ?= go
PKGS    ?= ./...
VERSION ?= $(shell git describe --tags --always --dirty 2>/dev/null || echo dev)
COMMIT  ?= $(shell git rev-parse --short HEAD 2>/dev/null)
# go-nvml's cgo preamble declares many deprecated vGPU calls; their warnings
# drown real ones.
export CGO_CFLAGS ?= -O2 -g -Wno-deprecated-declarations
LDFLAGS := -X github.com/open-autoglm/glmd/internal/version.Version=$(VERSION) \
           -X github.com/open-autoglm/glmd/internal/version.Commit=$(COMMIT)

.PHONY: all build test lint fmt vet staticcheck unit fuzz bench clean vm-test

all: build

build:
	$(GO) build -trimpath -ldflags '$(LDFLAGS)' -o bin/ ./cmd/glmd ./cmd/glmctl

# test = the checks CI runs: formatting, vet (also for other platforms and
# without cgo), staticcheck, every test with the race detector, then the
# cgroup v2 tests inside a User-Mode-Linux guest (the host runs v1).
test: lint unit vm-test package-test

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

# TestV2_* need a pure cgroup v2 tree: vm-test runs them. The Consul tests use the agent .ci/consul-build
# builds (once, then cached); where it cannot be built they skip (fail under GLMD_TEST_STRICT=1).
unit:
	CONSUL_BIN="$$(./.ci/consul-build)" $(GO) test -race -count=1 -timeout 20m -skip '^TestV2_' $(PKGS)

# consul builds the Consul agent for the tests (about 7 minutes the first time) and prints its path.
.PHONY: consul
consul:
	@./.ci/consul-build

# fuzz runs each fuzzer for FUZZTIME (the seeds alone run in `make test`).
FUZZTIME ?= 60s
fuzz:
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzLoadTask$$' -fuzztime $(FUZZTIME)
	$(GO) test ./internal/config -run '^$$' -fuzz '^FuzzParseByteSize$$' -fuzztime $(FUZZTIME)

# bench runs the benchmarks docs/benchmarks.md reports (needs a C compiler).
bench:
	$(GO) test -run '^$$' -bench . -benchtime 10x ./supervisor ./agent ./internal/tasklog ./internal/config ./internal/confwatch \
		./internal/gpu ./internal/cron
	CONSUL_BIN="$$(./.ci/consul-build)" $(GO) test -run '^$$' -bench Failover -benchtime 7x ./discovery
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

# package builds the .deb and .rpm packages for amd64 and arm64 into bin/packages (packaging/package.sh; the arm64
# build keeps NVML, so it needs cgo and Debian's gcc-aarch64-linux-gnu and libc6-dev-arm64-cross).
.PHONY: package package-test
package:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' ./packaging/package.sh

# package-test builds the packages, installs the .deb on this machine for real (Debian, root), runs glmd from it,
# then removes and purges it (.ci/package-test; it refuses to run where glmd is installed).
package-test:
	GO='$(GO)' VERSION='$(VERSION)' COMMIT='$(COMMIT)' ./.ci/package-test
