// Package deptest holds the tests that guard glmd's package graph: which
// package may link what (DESIGN.md: only agent/ wires real Consul, NVML and
// cgroup adapters). The tests run `go list`, so they live apart from the
// packages whose tests start glmd's process reaper.
package deptest
