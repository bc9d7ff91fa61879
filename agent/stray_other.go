//go:build !linux

package agent

// workerEnv cannot read another process's environment here.
func workerEnv(int) (task, instance string, ok bool) { return "", "", false }
