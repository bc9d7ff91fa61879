//go:build unix

package confwatch

import (
	"io/fs"
	"syscall"
)

// owner returns the uid and gid behind info, which the Hash covers because
// the loader refuses task files that are not root's when glmd runs as root.
func owner(info fs.FileInfo) (uid, gid uint32) {
	if st, ok := info.Sys().(*syscall.Stat_t); ok {
		return st.Uid, st.Gid
	}
	return 0, 0
}
