package api

import (
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"os/user"
	"path/filepath"
	"strconv"
	"syscall"
	"time"
)

// socketMode lets the owner (root) and the socket's group (glmd) connect.
const socketMode = 0o660

// Listen opens the control socket at path. It refuses when something
// answers there already (another glmd), removes a stale socket file left by
// a crash, creates the parent directory (0755), and sets the socket's mode
// to 0660 and its group to group when glmd runs as root and the group
// exists (otherwise it leaves the group alone).
func Listen(path, group string) (net.Listener, error) {
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		return nil, fmt.Errorf("create control socket directory: %w", err)
	}
	if err := removeStale(path); err != nil {
		return nil, err
	}
	l, err := net.Listen("unix", path)
	if err != nil {
		return nil, fmt.Errorf("listen on control socket: %w", err)
	}
	if err := os.Chmod(path, socketMode); err != nil {
		_ = l.Close()
		return nil, fmt.Errorf("set mode of control socket: %w", err)
	}
	if err := chownGroup(path, group); err != nil {
		_ = l.Close()
		return nil, err
	}
	return l, nil
}

// removeStale removes a socket file nobody answers on. A file that is not a
// socket, or one that answers, is left alone and reported.
func removeStale(path string) error {
	fi, err := os.Lstat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("control socket: %w", err)
	}
	if fi.Mode().Type() != fs.ModeSocket {
		return fmt.Errorf("control socket %s exists and is not a socket; remove it or choose another socket path", path)
	}
	conn, err := net.DialTimeout("unix", path, time.Second)
	if err == nil {
		_ = conn.Close()
		return fmt.Errorf("another glmd is running (it answers on %s); stop it first", path)
	}
	// Only "refused" proves that nobody listens; a full backlog (EAGAIN)
	// or a permission error could hide a live agent.
	if !errors.Is(err, syscall.ECONNREFUSED) {
		return fmt.Errorf("control socket %s: cannot tell whether another glmd uses it: %w", path, err)
	}
	if err := os.Remove(path); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("remove stale control socket: %w", err)
	}
	return nil
}

// chownGroup gives the socket to group, so that its members may use glmctl.
// Only root can; a missing group is not an error (dev mode, fresh hosts).
func chownGroup(path, group string) error {
	if group == "" || os.Geteuid() != 0 {
		return nil
	}
	g, err := user.LookupGroup(group)
	if err != nil {
		if errors.As(err, new(user.UnknownGroupError)) {
			return nil
		}
		return fmt.Errorf("look up group %q of control socket: %w", group, err)
	}
	gid, err := strconv.Atoi(g.Gid)
	if err != nil {
		return fmt.Errorf("group %q of control socket has a non-numeric gid %q", group, g.Gid)
	}
	if err := os.Chown(path, -1, gid); err != nil {
		return fmt.Errorf("set group of control socket: %w", err)
	}
	return nil
}
