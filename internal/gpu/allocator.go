package gpu

import (
	"fmt"
	"math"
	"slices"
	"strconv"
	"strings"
)

// Allocator hands whole GPUs to owners. It is pure: no I/O, no clock, no
// locks (the Pool guards it), and its choices depend only on its inputs,
// so the same history always gives the same GPUs.
//
// GPUs are exclusive unless a request is Shared; a Shared request may join
// GPUs whose every holder is Shared too. Count requests are placed by
// topology: see score.go for the ranking.
type Allocator struct {
	devs    []Device       // in index order
	byUUID  map[string]int // UUID -> position in devs
	score   [][]int        // pairScore between positions
	healthy []bool         // allocatable
	used    []int64        // bytes in use, from the last sample
	holds   map[Owner]holding
}

// holding is what one owner holds.
type holding struct {
	pos    []int // positions, in allocation order
	shared bool
}

// NewAllocator returns an Allocator of devs (every GPU healthy, no memory
// used) with the links between them; a pair missing from links scores as
// LevelSystem.
func NewAllocator(devs []Device, links map[Pair]Link) *Allocator {
	a := &Allocator{
		devs:   slices.Clone(devs),
		byUUID: make(map[string]int, len(devs)),
		holds:  map[Owner]holding{},
	}
	slices.SortStableFunc(a.devs, func(x, y Device) int { return x.Index - y.Index })
	n := len(a.devs)
	a.healthy = make([]bool, n)
	a.used = make([]int64, n)
	a.score = make([][]int, n)
	for i, d := range a.devs {
		a.byUUID[d.UUID] = i
		a.healthy[i] = true
		a.score[i] = make([]int, n)
	}
	for i := range a.devs {
		for j := i + 1; j < n; j++ {
			l, ok := links[PairOf(a.devs[i].UUID, a.devs[j].UUID)]
			if !ok {
				l = Link{Level: LevelSystem}
			}
			a.score[i][j] = pairScore(l)
			a.score[j][i] = a.score[i][j]
		}
	}
	return a
}

// SetHealthy marks the GPU allocatable or not. Holders keep it: stopping
// them is the agent's decision. Unknown UUIDs are ignored.
func (a *Allocator) SetHealthy(uuid string, ok bool) {
	if p, found := a.byUUID[uuid]; found {
		a.healthy[p] = ok
	}
}

// SetUsed records the bytes in use on the GPU (all processes, from the
// last sample), against which MinMemory is checked.
func (a *Allocator) SetUsed(uuid string, bytes int64) {
	if p, found := a.byUUID[uuid]; found {
		a.used[p] = max(bytes, 0)
	}
}

// Holders returns who holds the GPU, sorted.
func (a *Allocator) Holders(uuid string) []Owner {
	p, found := a.byUUID[uuid]
	if !found {
		return nil
	}
	var out []Owner
	for o, h := range a.holds {
		if slices.Contains(h.pos, p) {
			out = append(out, o)
		}
	}
	sortOwners(out)
	return out
}

// Held returns the UUIDs the owner holds, in allocation order.
func (a *Allocator) Held(owner Owner) []string {
	h := a.holds[owner]
	out := make([]string, 0, len(h.pos))
	for _, p := range h.pos {
		out = append(out, a.devs[p].UUID)
	}
	return out
}

// Release gives back everything the owner holds. Releasing twice is fine.
func (a *Allocator) Release(owner Owner) { delete(a.holds, owner) }

// Allocate gives the owner the GPUs req asks for and returns them; what it
// held before is given back first (an owner holds one grant at a time).
// prefer is the owner's previous UUIDs in their order: when they are all
// eligible and as many as requested they are returned again, so that a
// restarted worker finds its weights' GPUs. A request for nothing returns
// a zero Grant. When req cannot be met, Allocate returns a *ShortError and
// changes nothing.
func (a *Allocator) Allocate(owner Owner, req Request, prefer []string) (Grant, error) {
	return a.allocate(owner, req, prefer, nil)
}

// allocate is Allocate, and a count request first tries to do without the
// GPUs in avoid (other owners' previous GPUs, kept for their return): only
// when that fails are they taken like any other.
func (a *Allocator) allocate(owner Owner, req Request, prefer []string, avoid map[string]bool) (Grant, error) {
	if req.Count < 0 {
		return Grant{}, &ShortError{Request: req, permanent: true, msg: fmt.Sprintf("needs %d GPUs: count must not be negative", req.Count)}
	}
	if req.want() == 0 {
		a.Release(owner)
		return Grant{}, nil
	}
	v := a.view(owner, req)
	var pos []int
	var err error
	if len(req.IDs) > 0 {
		pos, err = a.byIDs(v, req)
	} else {
		pos, err = a.byCount(v, req, prefer, avoid)
	}
	if err != nil {
		return Grant{}, err
	}
	a.holds[owner] = holding{pos: pos, shared: req.Shared}
	devs := make([]Device, len(pos))
	for i, p := range pos {
		devs[i] = a.devs[p]
	}
	return grantOf(devs), nil
}

// why says whether one GPU can serve a request, and if not, why.
type why int

const (
	whyOK    why = iota
	whyMIG       // MIG mode is on: never handed out whole (permanent)
	whyModel     // another model (permanent)
	whySmall     // total memory below MinMemory (permanent)
	whySick      // not allocatable now (health)
	whyHeld      // held by an owner the request cannot share with
	whyFull      // not enough memory free now
)

// permanent reports whether the reason cannot change while the host keeps
// its GPUs.
func (w why) permanent() bool { return w == whyMIG || w == whyModel || w == whySmall }

// view is every GPU's answer to one request, seen by one owner.
type view struct {
	why     []why
	holders [][]Owner // holders other than the requesting owner
}

func (a *Allocator) view(owner Owner, req Request) view {
	n := len(a.devs)
	v := view{why: make([]why, n), holders: make([][]Owner, n)}
	exclusive := make([]bool, n)
	for o, h := range a.holds {
		if o == owner {
			continue
		}
		for _, p := range h.pos {
			v.holders[p] = append(v.holders[p], o)
			exclusive[p] = exclusive[p] || !h.shared
		}
	}
	model := strings.ToLower(req.Model)
	for p, d := range a.devs {
		sortOwners(v.holders[p])
		switch {
		case d.MIG:
			v.why[p] = whyMIG
		case model != "" && !strings.Contains(strings.ToLower(d.Name), model):
			v.why[p] = whyModel
		case req.MinMemory > 0 && d.Memory < req.MinMemory:
			v.why[p] = whySmall
		case !a.healthy[p]:
			v.why[p] = whySick
		case len(v.holders[p]) > 0 && (!req.Shared || exclusive[p]):
			v.why[p] = whyHeld
		case req.MinMemory > 0 && d.Memory-a.used[p] < req.MinMemory:
			v.why[p] = whyFull
		}
	}
	return v
}

// byIDs resolves an explicit set: every GPU named must be eligible.
func (a *Allocator) byIDs(v view, req Request) ([]int, error) {
	var pos []int
	var problems []string
	permanent := false
	for _, id := range req.IDs {
		p, found := a.resolve(id)
		if !found {
			problems = append(problems, fmt.Sprintf("no such GPU %q", id))
			permanent = true
			continue
		}
		if slices.Contains(pos, p) {
			problems = append(problems, fmt.Sprintf("GPU %q named twice", id))
			permanent = true
			continue
		}
		pos = append(pos, p)
		if v.why[p] == whyOK {
			continue
		}
		d := a.devs[p]
		var reason string
		switch v.why[p] {
		case whyMIG:
			reason = "in MIG mode, and glmd hands out whole GPUs only"
		case whyModel:
			reason = fmt.Sprintf("a %s, not %q", d.Name, req.Model)
		case whySmall:
			reason = fmt.Sprintf("%s in total, wants >= %s free", formatBytes(d.Memory), formatBytes(req.MinMemory))
		case whySick:
			reason = "unhealthy"
		case whyHeld:
			reason = "held by " + joinOwners(v.holders[p])
		case whyFull:
			reason = fmt.Sprintf("%s free, wants >= %s", formatBytes(d.Memory-a.used[p]), formatBytes(req.MinMemory))
		}
		problems = append(problems, fmt.Sprintf("needs GPU %d (%s), %s", d.Index, d.UUID, reason))
		permanent = permanent || v.why[p].permanent()
	}
	if req.SingleNUMA && len(problems) == 0 && !(&chooser{a: a}).oneNode(pos) {
		problems = append(problems, fmt.Sprintf("needs GPUs %s on one NUMA node", strings.Join(req.IDs, ",")))
		permanent = true
	}
	if len(problems) > 0 {
		return nil, &ShortError{Request: req, permanent: permanent, msg: strings.Join(problems, "; ")}
	}
	return pos, nil
}

// resolve finds a GPU by UUID or index.
func (a *Allocator) resolve(id string) (int, bool) {
	if p, found := a.byUUID[id]; found {
		return p, true
	}
	if n, err := strconv.Atoi(id); err == nil {
		for p, d := range a.devs {
			if d.Index == n {
				return p, true
			}
		}
	}
	return 0, false
}

// byCount places a count request: the previous GPUs when they still fit,
// else the best-ranked set.
func (a *Allocator) byCount(v view, req Request, prefer []string, avoid map[string]bool) ([]int, error) {
	c := &chooser{a: a, shared: req.Shared, free: make([]bool, len(a.devs)), held: make([]bool, len(a.devs))}
	var cands, others []int
	for p, d := range a.devs {
		c.held[p] = len(v.holders[p]) > 0
		c.free[p] = a.healthy[p] && !d.MIG && !c.held[p]
		if v.why[p] == whyOK {
			cands = append(cands, p)
			if !avoid[d.UUID] {
				others = append(others, p)
			}
		}
	}
	if pos, fits := a.preferred(v, prefer, req); fits {
		return pos, nil
	}
	if len(others) < len(cands) {
		if set := c.best(others, req.Count, req.SingleNUMA); set != nil {
			return set, nil
		}
	}
	if set := c.best(cands, req.Count, req.SingleNUMA); set != nil {
		return set, nil
	}
	return nil, a.short(v, req, len(cands))
}

// preferred returns the positions of prefer when they are exactly what req
// asks for and all eligible.
func (a *Allocator) preferred(v view, prefer []string, req Request) ([]int, bool) {
	if len(prefer) != req.Count {
		return nil, false
	}
	var pos []int
	for _, u := range prefer {
		p, found := a.byUUID[u]
		if !found || v.why[p] != whyOK || slices.Contains(pos, p) {
			return nil, false
		}
		pos = append(pos, p)
	}
	if req.SingleNUMA && !(&chooser{a: a}).oneNode(pos) {
		return nil, false
	}
	return pos, true
}

// short builds the error for a count request that cannot be met now,
// telling "never on this host" from "not now".
func (a *Allocator) short(v view, req Request, available int) *ShortError {
	var b strings.Builder
	fmt.Fprintf(&b, "needs %d", req.Count)
	if req.Model != "" {
		fmt.Fprintf(&b, " %q", req.Model)
	}
	if req.Count == 1 {
		b.WriteString(" GPU")
	} else {
		b.WriteString(" GPUs")
	}
	if req.MinMemory > 0 {
		fmt.Fprintf(&b, " with >= %s free", formatBytes(req.MinMemory))
	}
	// possible counts the GPUs that could ever qualify, in total and per node.
	possible := 0
	perNode := map[int]int{}
	availNode := map[int]int{}
	var counts [whyFull + 1]int
	for p, w := range v.why {
		counts[w]++
		if !w.permanent() {
			possible++
			if n := a.devs[p].NUMANode; n >= 0 {
				perNode[n]++
			}
		}
		if w == whyOK {
			if n := a.devs[p].NUMANode; n >= 0 {
				availNode[n]++
			}
		}
	}
	permanent := possible < req.Count
	if req.SingleNUMA {
		b.WriteString(" on one NUMA node")
		maxNode, maxAvail := 0, 0
		for n, c := range perNode {
			maxNode = max(maxNode, c)
			maxAvail = max(maxAvail, availNode[n])
		}
		permanent = maxNode < req.Count
		fmt.Fprintf(&b, ", at most %d available on a node", maxAvail)
		if permanent {
			fmt.Fprintf(&b, "; this host has at most %d such GPUs on a node", maxNode)
		}
	} else {
		fmt.Fprintf(&b, ", %d available", available)
		if permanent {
			fmt.Fprintf(&b, "; this host has only %d such GPUs", possible)
		}
	}
	var detail []string
	for _, d := range []struct {
		w    why
		text string
	}{
		{whyHeld, "held"},
		{whySick, "unhealthy"},
		{whyFull, "with less memory free"},
		{whySmall, "with less memory in total"},
		{whyModel, "of another model"},
		{whyMIG, "in MIG mode (glmd hands out whole GPUs only)"},
	} {
		if counts[d.w] > 0 {
			detail = append(detail, fmt.Sprintf("%d %s", counts[d.w], d.text))
		}
	}
	if len(detail) > 0 {
		fmt.Fprintf(&b, " (%s)", strings.Join(detail, ", "))
	}
	return &ShortError{Request: req, Available: available, permanent: permanent, msg: b.String()}
}

// ShortError says why a Request cannot be met. Permanent tells "never on
// this host" (more GPUs than it has, an unknown ID, no GPU of the model)
// from "not now" (held, unhealthy, memory in use), so the agent can fail
// the instance or keep it pending.
type ShortError struct {
	Request   Request
	Available int // GPUs that qualify now (count requests)
	permanent bool
	msg       string
}

// Error reads like "needs 2 GPUs with >= 40GiB free, 1 available (5 held)".
func (e *ShortError) Error() string { return e.msg }

// Permanent reports whether the request can never be met on this host
// while it keeps its GPUs.
func (e *ShortError) Permanent() bool { return e.permanent }

// sortOwners sorts by task, then instance.
func sortOwners(os []Owner) {
	slices.SortFunc(os, func(a, b Owner) int {
		if c := strings.Compare(a.Task, b.Task); c != 0 {
			return c
		}
		return a.Instance - b.Instance
	})
}

// joinOwners writes owners as "a:0, b:1".
func joinOwners(os []Owner) string {
	s := make([]string, len(os))
	for i, o := range os {
		s[i] = o.String()
	}
	return strings.Join(s, ", ")
}

// formatBytes writes n in binary units as operators type them: "40GiB",
// "1.5TiB", "512MiB".
func formatBytes(n int64) string {
	units := []string{"B", "KiB", "MiB", "GiB", "TiB", "PiB"}
	v := float64(n)
	i := 0
	for v >= 1024 && i < len(units)-1 {
		v /= 1024
		i++
	}
	return strconv.FormatFloat(math.Round(v*10)/10, 'f', -1, 64) + units[i]
}
