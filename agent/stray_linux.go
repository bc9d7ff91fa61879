package agent

import (
	"bytes"
	"fmt"
	"os"
)

// workerEnv reads GLMD_TASK and GLMD_INSTANCE from a process's environment.
func workerEnv(pid int) (task, instance string, ok bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/environ", pid))
	if err != nil {
		return "", "", false
	}
	for kv := range bytes.SplitSeq(b, []byte{0}) {
		if v, found := bytes.CutPrefix(kv, []byte("GLMD_TASK=")); found {
			task = string(v)
		} else if v, found := bytes.CutPrefix(kv, []byte("GLMD_INSTANCE=")); found {
			instance = string(v)
		}
	}
	return task, instance, task != "" && instance != ""
}
