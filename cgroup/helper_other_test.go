//go:build !linux

package cgroup

const helperEnv = "GLMD_CGROUP_TEST_HELPER"

func runHelper(string, []string) int { return 2 }

func setupTestProcess() {}
