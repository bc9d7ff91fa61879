package agent

import (
	"bufio"
	"os"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/open-autoglm/glmd/internal/gpu"
)

// allowedCPUs are the CPUs and memory nodes the agent may run on (its
// affinity and its cpuset, as /proc/self/status reports Mems_allowed):
// an instance's cpuset must lie inside them.
func allowedCPUs() (cpus, mems []int) {
	var set unix.CPUSet
	if err := unix.SchedGetaffinity(0, &set); err == nil {
		for c := range 1 << 16 {
			if set.Count() == len(cpus) {
				break
			}
			if set.IsSet(c) {
				cpus = append(cpus, c)
			}
		}
	}
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return cpus, nil
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Mems_allowed_list:"); ok {
			mems, _ = gpu.ParseList(strings.TrimSpace(v))
		}
	}
	return cpus, mems
}
