//go:build unix

package config

import (
	"io/fs"
	"syscall"
)

// fileOwner returns the owner's uid of a file when fi comes from the OS
// (os.Stat, os.DirFS, or a snapshot that keeps the *syscall.Stat_t).
func fileOwner(fi fs.FileInfo) (uid uint32, ok bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok || st == nil {
		return 0, false
	}
	return st.Uid, true
}
