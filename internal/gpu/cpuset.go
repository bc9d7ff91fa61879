package gpu

// IntersectList keeps the numbers of list ("0-55,112-167", a CPU or NUMA
// node list) that are also in allowed, in the same format. The agent uses
// it to pin an instance to its GPUs' CPUs that the agent itself may use:
// a cpuset outside the parent's is refused by the kernel. A list that
// does not parse yields "".
func IntersectList(list string, allowed []int) string {
	nums, err := parseCPUList(list)
	if err != nil {
		return ""
	}
	ok := make(map[int]bool, len(allowed))
	for _, n := range allowed {
		ok[n] = true
	}
	var keep []int
	for _, n := range nums {
		if ok[n] {
			keep = append(keep, n)
		}
	}
	return formatCPUList(keep)
}

// ParseList reads a CPU or NUMA node list in the kernel's format.
func ParseList(list string) ([]int, error) { return parseCPUList(list) }
