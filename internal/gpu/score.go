package gpu

import "slices"

// maxSubsets bounds the exhaustive search of Allocate: C(16, 8) = 12,870
// still fits, so every choice on hosts of up to 16 eligible GPUs is exact.
// Beyond it (e.g. 8 of 32 GPUs: 10.5 million subsets) Allocate grows a set
// greedily from every seed instead, which finds the NVLink and switch
// groups (they are what the pair scores reward) but may miss the best
// packing.
const maxSubsets = 1 << 14

// pairScore rates the path between two GPUs as NVIDIA/go-gpuallocator's
// besteffort policy does (the Kubernetes device plugin uses it): the PCIe
// path scores 60 on one board, 50 through one switch, 40 through several,
// 30 through a host bridge, 20 within a NUMA node and 10 across; every
// NVLink lane adds 100, so NVLink pairs always win.
func pairScore(l Link) int {
	s := 10
	switch l.Level {
	case LevelInternal:
		s = 60
	case LevelSingle:
		s = 50
	case LevelMultiple:
		s = 40
	case LevelHostBridge:
		s = 30
	case LevelNode:
		s = 20
	}
	return s + 100*max(l.NVLink, 0)
}

// setKey ranks a candidate set of GPUs. Fields are compared in order.
type setKey struct {
	score    int   // sum of pair scores inside the set: higher is better
	fresh    int   // shared requests: GPUs nobody holds yet; fewer keeps whole GPUs for exclusive tasks
	stranded int   // sum of pair scores from the set to free GPUs left behind: lower keeps groups whole
	nodes    int   // NUMA nodes touched: fewer is better
	fit      int   // free GPUs left on the touched nodes: fewer packs nodes tightly
	idx      []int // positions, ascending (devices are in index order): lowest first
}

// better reports whether a ranks before b.
func (a setKey) better(b setKey) bool {
	switch {
	case a.score != b.score:
		return a.score > b.score
	case a.fresh != b.fresh:
		return a.fresh < b.fresh
	case a.stranded != b.stranded:
		return a.stranded < b.stranded
	case a.nodes != b.nodes:
		return a.nodes < b.nodes
	case a.fit != b.fit:
		return a.fit < b.fit
	}
	return slices.Compare(a.idx, b.idx) < 0
}

// chooser picks the best k devices among candidates. Positions are indices
// into the Allocator's device slice.
type chooser struct {
	a      *Allocator
	free   []bool // unheld and allocatable: what stranding is measured against
	held   []bool // someone holds it (shared requests prefer those)
	shared bool
	in     []bool // scratch of key: the set's positions
}

// key computes the ranking key of set (positions, ascending). The key's
// idx aliases set: clone both to keep them.
func (c *chooser) key(set []int) setKey {
	k := setKey{idx: set}
	if len(c.in) != len(c.a.devs) {
		c.in = make([]bool, len(c.a.devs))
	}
	var nodes [8]int // touched NUMA nodes; a set rarely spans more
	touched := nodes[:0]
	for i, p := range set {
		c.in[p] = true
		if n := c.a.devs[p].NUMANode; !slices.Contains(touched, n) {
			touched = append(touched, n)
		}
		if c.shared && !c.held[p] {
			k.fresh++
		}
		for _, q := range set[i+1:] {
			k.score += c.a.score[p][q]
		}
	}
	for q, free := range c.free {
		if !free || c.in[q] {
			continue
		}
		for _, p := range set {
			k.stranded += c.a.score[p][q]
		}
		if slices.Contains(touched, c.a.devs[q].NUMANode) {
			k.fit++
		}
	}
	for _, p := range set {
		c.in[p] = false
	}
	k.nodes = len(touched)
	return k
}

// best returns the best set of k among cands (positions, ascending), or nil
// when there is none; with singleNUMA only sets on one known node count.
func (c *chooser) best(cands []int, k int, singleNUMA bool) []int {
	if k <= 0 || k > len(cands) {
		return nil
	}
	if binomial(len(cands), k) > maxSubsets {
		return c.greedy(cands, k, singleNUMA)
	}
	var bestSet []int
	var bestKey setKey
	comb := make([]int, k) // positions into cands
	for i := range comb {
		comb[i] = i
	}
	set := make([]int, k)
	for {
		for i, ci := range comb {
			set[i] = cands[ci]
		}
		if !singleNUMA || c.oneNode(set) {
			if key := c.key(set); bestSet == nil || key.better(bestKey) {
				bestSet, bestKey = slices.Clone(set), key
				bestKey.idx = bestSet
			}
		}
		// Next combination in lexicographic order.
		i := k - 1
		for i >= 0 && comb[i] == len(cands)-k+i {
			i--
		}
		if i < 0 {
			return bestSet
		}
		comb[i]++
		for j := i + 1; j < k; j++ {
			comb[j] = comb[j-1] + 1
		}
	}
}

// greedy grows a set from every candidate as seed, each time adding the
// GPU with the highest pair score to the set so far (lowest index on a
// tie), and returns the best of the grown sets by the full ranking.
func (c *chooser) greedy(cands []int, k int, singleNUMA bool) []int {
	var bestSet []int
	var bestKey setKey
	for _, seed := range cands {
		set := []int{seed}
		for len(set) < k {
			next, nextScore := -1, -1
			for _, q := range cands {
				if slices.Contains(set, q) || (singleNUMA && c.a.devs[q].NUMANode != c.a.devs[seed].NUMANode) {
					continue
				}
				s := 0
				for _, p := range set {
					s += c.a.score[p][q]
				}
				if s > nextScore {
					next, nextScore = q, s
				}
			}
			if next < 0 {
				break
			}
			set = append(set, next)
		}
		if len(set) < k || (singleNUMA && !c.oneNode(set)) {
			continue
		}
		slices.Sort(set)
		if key := c.key(set); bestSet == nil || key.better(bestKey) {
			bestSet, bestKey = set, key
		}
	}
	return bestSet
}

// oneNode reports whether every device of set is on the same known node.
func (c *chooser) oneNode(set []int) bool {
	for _, p := range set {
		if n := c.a.devs[p].NUMANode; n < 0 || n != c.a.devs[set[0]].NUMANode {
			return false
		}
	}
	return true
}

// binomial returns C(n, k), saturating above maxSubsets.
func binomial(n, k int) int {
	k = min(k, n-k)
	r := 1
	for i := 1; i <= k; i++ {
		r = r * (n - k + i) / i
		if r > maxSubsets {
			return maxSubsets + 1
		}
	}
	return r
}
