//go:build !linux

package agent

// allowedCPUs is unknown here: no pinning.
func allowedCPUs() (cpus, mems []int) { return nil, nil }
