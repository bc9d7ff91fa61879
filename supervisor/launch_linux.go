package supervisor

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
)

// defaultPath is the PATH a worker gets when its task sets none.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

var (
	osLauncherOnce sync.Once
	osLauncherVal  *OSLauncher
	osLauncherErr  error
)

// OSLauncher starts workers as real processes: each in a new process group,
// with the task's user, groups, umask, working directory and a clean
// environment, stdin from /dev/null. It makes the agent a child subreaper
// and reaps every child, so it is one per process.
type OSLauncher struct {
	reaper         *reaper
	devNull        *os.File
	log            *slog.Logger
	ownOOMScoreAdj int // what workers inherit at fork

	// umaskMu is held for reading by every launch and for writing by a
	// launch that sets a umask: the umask is process-wide, so the fork
	// that needs another one must be alone.
	umaskMu sync.RWMutex
}

// NewOSLauncher returns the process's OS launcher, creating it on first use.
func NewOSLauncher(log *slog.Logger) (*OSLauncher, error) {
	osLauncherOnce.Do(func() {
		if log == nil {
			log = slog.Default()
		}
		var r *reaper
		r, osLauncherErr = newReaper(log)
		if osLauncherErr != nil {
			return
		}
		var dn *os.File
		dn, osLauncherErr = os.Open(os.DevNull)
		if osLauncherErr != nil {
			return
		}
		own := 0
		if b, err := os.ReadFile("/proc/self/oom_score_adj"); err == nil {
			own, _ = strconv.Atoi(strings.TrimSpace(string(b)))
		}
		osLauncherVal = &OSLauncher{reaper: r, devNull: dn, log: log, ownOOMScoreAdj: own}
	})
	return osLauncherVal, osLauncherErr
}

// Launch starts c. The returned error satisfies errors.Is(err,
// ErrPermanent) when retrying cannot help.
func (l *OSLauncher) Launch(ctx context.Context, c *Command) (Process, error) {
	if len(c.Argv) == 0 || c.Argv[0] == "" {
		return nil, Permanent(errors.New("command is empty"))
	}
	cred, home, uname, err := resolveUser(c.User, c.Group)
	if err != nil {
		return nil, err
	}
	env := workerEnv(c, home, uname)
	dir := c.Dir
	if dir == "" {
		dir = home
		if fi, err := os.Stat(dir); dir == "" || err != nil || !fi.IsDir() {
			dir = "/"
		}
	} else if fi, err := os.Stat(dir); err != nil {
		return nil, Permanent(fmt.Errorf("workdir %s: %w", dir, unwrapPathError(err)))
	} else if !fi.IsDir() {
		return nil, Permanent(fmt.Errorf("workdir %s: not a directory", dir))
	}
	bin, err := lookPath(c.Argv[0], envValue(env, "PATH"), dir)
	if err != nil {
		return nil, err
	}
	stdout, stderr := c.Stdout, c.Stderr
	if stdout == nil {
		stdout = l.devNull
	}
	if stderr == nil {
		stderr = l.devNull
	}
	attr := &syscall.ProcAttr{
		Dir:   dir,
		Env:   env,
		Files: []uintptr{l.devNull.Fd(), stdout.Fd(), stderr.Fd()},
		Sys:   &syscall.SysProcAttr{Setpgid: true, Credential: cred},
	}

	if c.Umask >= 0 {
		l.umaskMu.Lock()
		defer l.umaskMu.Unlock()
		old := syscall.Umask(c.Umask)
		defer syscall.Umask(old)
	} else {
		l.umaskMu.RLock()
		defer l.umaskMu.RUnlock()
	}
	p := &osProcess{task: c.Task, instance: strconv.Itoa(c.Instance), reaper: l.reaper, group: c.Cgroup, done: make(chan struct{})}
	if g := c.Cgroup; g != nil {
		n, err := g.OOMKills()
		if err != nil {
			return nil, fmt.Errorf("cgroup %s: read the OOM kill count: %w", g.Name(), err)
		}
		p.oomAtStart = n
	}
	r := l.reaper
	r.forkMu.RLock()
	defer r.forkMu.RUnlock()
	if g := c.Cgroup; g != nil {
		p.pid, err = g.Start(func(fd int) (int, error) {
			if fd >= 0 {
				attr.Sys.UseCgroupFD, attr.Sys.CgroupFD = true, fd
			}
			return syscall.ForkExec(bin, c.Argv, attr)
		})
	} else {
		p.pid, err = syscall.ForkExec(bin, c.Argv, attr)
	}
	if err != nil {
		return nil, classifyStartError(bin, dir, uname, err)
	}
	r.register(p)
	if err := l.setOOMScoreAdj(p.pid, c.OOMScoreAdj); err != nil {
		l.log.Warn("set oom_score_adj", "task", c.Task, "instance", c.Instance, "pid", p.pid, "err", err)
	}
	return p, nil
}

// setOOMScoreAdj gives the new process its oom_score_adj. It runs right
// after exec: the kernel offers no way to set it for a child before, short
// of changing the agent's own, which would make the agent killable.
func (l *OSLauncher) setOOMScoreAdj(pid int, want *int) error {
	v := 0
	if want != nil {
		v = *want
	}
	if v == l.ownOOMScoreAdj {
		return nil // inherited already
	}
	return os.WriteFile("/proc/"+strconv.Itoa(pid)+"/oom_score_adj", []byte(strconv.Itoa(v)), 0)
}

// classifyStartError turns a fork/exec errno into an error for the
// operator. The errno does not say which step failed (setting groups or
// ids, chdir, exec), so the hint names what to check.
func classifyStartError(bin, dir, uname string, err error) error {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		switch errno {
		case syscall.EAGAIN, syscall.ENOMEM, syscall.EINTR:
			return fmt.Errorf("start %s: %w (will retry)", bin, err)
		case syscall.EACCES:
			return Permanent(fmt.Errorf("start %s as user %s in %s: %w (the user needs search permission on every directory of the workdir and the command, and execute permission on the command)", bin, uname, dir, err))
		}
	}
	return Permanent(fmt.Errorf("start %s as user %s in %s: %w", bin, uname, dir, err))
}

// resolveUser finds the credentials for user and group. An empty user runs
// the worker as the agent's user, without switching.
func resolveUser(name, group string) (cred *syscall.Credential, home, uname string, err error) {
	var u *user.User
	if name == "" {
		u, err = user.Current()
		if err != nil {
			return nil, "", "", fmt.Errorf("look up the agent's user: %w", err)
		}
	} else {
		u, err = lookupUser(name)
		if err != nil {
			return nil, "", "", Permanent(fmt.Errorf("user %q: %w (create the user or fix `user` in the task file)", name, err))
		}
	}
	uid, _ := strconv.ParseUint(u.Uid, 10, 32)
	gid, _ := strconv.ParseUint(u.Gid, 10, 32)
	if group != "" {
		g, err := lookupGroup(group)
		if err != nil {
			return nil, "", "", Permanent(fmt.Errorf("group %q: %w (create the group or fix `group` in the task file)", group, err))
		}
		gid, _ = strconv.ParseUint(g.Gid, 10, 32)
	}
	if name == "" && group == "" {
		return nil, u.HomeDir, u.Username, nil
	}
	if os.Geteuid() != 0 {
		if uint64(os.Geteuid()) == uid && uint64(os.Getegid()) == gid {
			return nil, u.HomeDir, u.Username, nil
		}
		return nil, "", "", Permanent(fmt.Errorf("user %q: glmd runs as uid %d and cannot switch users (run glmd as root, or drop `user`/`group`)", u.Username, os.Geteuid()))
	}
	var groups []uint32
	if ids, err := u.GroupIds(); err == nil {
		for _, id := range ids {
			if g, err := strconv.ParseUint(id, 10, 32); err == nil {
				groups = append(groups, uint32(g))
			}
		}
	}
	return &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid), Groups: groups}, u.HomeDir, u.Username, nil
}

// lookupUser accepts a name or a numeric uid.
func lookupUser(name string) (*user.User, error) {
	u, err := user.Lookup(name)
	if err == nil {
		return u, nil
	}
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		return user.LookupId(name)
	}
	return nil, err
}

// lookupGroup accepts a name or a numeric gid.
func lookupGroup(name string) (*user.Group, error) {
	g, err := user.LookupGroup(name)
	if err == nil {
		return g, nil
	}
	if _, nerr := strconv.ParseUint(name, 10, 32); nerr == nil {
		return user.LookupGroupId(name)
	}
	return nil, err
}

// workerEnv is the task's environment plus what a login would give, never
// the agent's own environment. GLMD_TASK and GLMD_INSTANCE are always set
// by the launcher itself: they attribute orphans to their instance.
func workerEnv(c *Command, home, uname string) []string {
	env := make([]string, 0, len(c.Env)+6)
	for _, kv := range c.Env {
		if strings.HasPrefix(kv, "GLMD_TASK=") || strings.HasPrefix(kv, "GLMD_INSTANCE=") {
			continue
		}
		env = append(env, kv)
	}
	add := func(k, v string) {
		if _, ok := lookupEnv(env, k); !ok {
			env = append(env, k+"="+v)
		}
	}
	add("PATH", defaultPath)
	if home != "" {
		add("HOME", home)
	}
	if uname != "" {
		add("USER", uname)
		add("LOGNAME", uname)
	}
	env = append(env, "GLMD_TASK="+c.Task, "GLMD_INSTANCE="+strconv.Itoa(c.Instance))
	return env
}

func lookupEnv(env []string, key string) (string, bool) {
	for i := len(env) - 1; i >= 0; i-- {
		if k, v, ok := strings.Cut(env[i], "="); ok && k == key {
			return v, true
		}
	}
	return "", false
}

func envValue(env []string, key string) string {
	v, _ := lookupEnv(env, key)
	return v
}

// lookPath finds file in the worker's PATH (not the agent's), as the shell would.
func lookPath(file, path, dir string) (string, error) {
	if strings.Contains(file, "/") {
		p := file
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		if err := executable(p); err != nil {
			return "", Permanent(fmt.Errorf("command %s: %w", file, err))
		}
		return file, nil
	}
	for _, d := range filepath.SplitList(path) {
		if d == "" {
			d = "."
		}
		p := filepath.Join(d, file)
		if executable(p) == nil {
			return p, nil
		}
	}
	return "", Permanent(fmt.Errorf("command %q: not found in PATH=%s (use an absolute path or set env.PATH)", file, path))
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return unwrapPathError(err)
	}
	if fi.IsDir() {
		return errors.New("is a directory")
	}
	if fi.Mode()&0o111 == 0 {
		return errors.New("not executable (chmod +x)")
	}
	return nil
}

func unwrapPathError(err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}
