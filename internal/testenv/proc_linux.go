package testenv

import (
	"bytes"
	"os"
	"strconv"
)

// Alive reports whether pid exists and is not a zombie (it reads the state in /proc/<pid>/stat).
func Alive(pid int) bool {
	info := inspect(pid)
	return info.present && !info.zombie
}

// ProcsWithEnv lists, sorted, the live pids whose /proc/<pid>/environ holds exactly the variable kv ("KEY=VALUE").
// glmd puts GLMD_TASK and GLMD_INSTANCE into a worker's environment, and every descendant inherits them, so this
// finds setsid'd and double-forked descendants too. It sees the environment a process was started with, and only
// the processes it may read (all of them as root, its own user's otherwise).
func ProcsWithEnv(kv string) []int {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte("\x00" + kv + "\x00")
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil || len(env) == 0 {
			continue
		}
		// Every entry ends in NUL; a leading NUL makes the first entry match like the others.
		if bytes.Contains(append([]byte{0}, env...), want) && Alive(pid) {
			pids = append(pids, pid)
		}
	}
	return sortedPids(pids)
}

// inspect reads /proc/<pid>/stat; a missing or unreadable entry is a process that is not there.
func inspect(pid int) procInfo {
	info := procInfo{pid: pid}
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return info
	}
	// "pid (comm) state ppid ...": comm may hold spaces and parentheses, so split after the last ')'.
	open, closing := bytes.IndexByte(data, '('), bytes.LastIndexByte(data, ')')
	if open < 0 || closing < open {
		return info
	}
	fields := bytes.Fields(data[closing+1:])
	const (
		stateField = 0  // field 3 of proc(5)
		ppidField  = 1  // field 4
		startField = 19 // field 22, starttime
	)
	if len(fields) <= startField {
		return info
	}
	info.present = true
	info.comm = string(data[open+1 : closing])
	info.state = string(fields[stateField])
	info.zombie = info.state == "Z" || info.state == "X"
	info.ppid, _ = strconv.Atoi(string(fields[ppidField]))
	info.start, _ = strconv.ParseUint(string(fields[startField]), 10, 64)
	return info
}
