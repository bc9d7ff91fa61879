package config

import "sort"

// findCycles returns, for every task that is part of a dependency cycle,
// the shortest cycle through it, starting and ending with that task:
// ["a", "b", "c", "a"]. graph maps a task to the tasks it depends on.
func findCycles(graph map[string][]string) map[string][]string {
	// Tarjan's strongly connected components: a task is in a cycle exactly
	// when its component has more than one task (self-loops are not edges here).
	var (
		index   = map[string]int{}
		low     = map[string]int{}
		onStack = map[string]bool{}
		stack   []string
		next    int
		comp    = map[string]int{}
		sizes   []int
	)
	var connect func(v string)
	connect = func(v string) {
		index[v], low[v] = next, next
		next++
		stack = append(stack, v)
		onStack[v] = true
		for _, w := range graph[v] {
			if _, seen := index[w]; !seen {
				connect(w)
				low[v] = min(low[v], low[w])
			} else if onStack[w] {
				low[v] = min(low[v], index[w])
			}
		}
		if low[v] == index[v] {
			id := len(sizes)
			size := 0
			for {
				w := stack[len(stack)-1]
				stack = stack[:len(stack)-1]
				onStack[w] = false
				comp[w] = id
				size++
				if w == v {
					break
				}
			}
			sizes = append(sizes, size)
		}
	}
	nodes := make([]string, 0, len(graph))
	for v := range graph {
		nodes = append(nodes, v)
	}
	sort.Strings(nodes)
	for _, v := range nodes {
		if _, seen := index[v]; !seen {
			connect(v)
		}
	}

	cycles := map[string][]string{}
	for v, id := range comp {
		if sizes[id] > 1 {
			cycles[v] = shortestCycle(graph, comp, v)
		}
	}
	return cycles
}

// shortestCycle finds, breadth first within v's component, the shortest
// path from v back to v; neighbours are tried in sorted order so that the
// answer does not depend on map order.
func shortestCycle(graph map[string][]string, comp map[string]int, v string) []string {
	parent := map[string]string{}
	queue := []string{v}
	for len(queue) > 0 {
		u := queue[0]
		queue = queue[1:]
		deps := append([]string(nil), graph[u]...)
		sort.Strings(deps)
		for _, w := range deps {
			if comp[w] != comp[v] {
				continue
			}
			if w == v {
				path := []string{v}
				for x := u; x != v; x = parent[x] {
					path = append(path, x)
				}
				// path is v, u, ..., reversed after the first; build v -> ... -> u -> v.
				cycle := []string{v}
				for i := len(path) - 1; i >= 1; i-- {
					cycle = append(cycle, path[i])
				}
				return append(cycle, v)
			}
			if _, seen := parent[w]; !seen {
				parent[w] = u
				queue = append(queue, w)
			}
		}
	}
	return nil
}
