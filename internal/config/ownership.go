package config

import (
	"fmt"
	"io/fs"
	"strings"
)

// checkOwnership refuses a file that someone other than root could have
// written: glmd runs as root and starts what the file says. A FileInfo
// without an owner (not from the OS) is not checked.
func checkOwnership(fi fs.FileInfo) error {
	uid, ok := fileOwner(fi)
	if !ok {
		return nil
	}
	perm := fi.Mode().Perm()
	var why, fix []string
	if uid != 0 {
		why = append(why, fmt.Sprintf("owned by uid %d", uid))
		fix = append(fix, "chown root:root")
	}
	switch perm & 0o022 {
	case 0o020:
		why = append(why, "writable by group")
	case 0o002:
		why = append(why, "writable by others")
	case 0o022:
		why = append(why, "writable by group and others")
	}
	if perm&0o022 != 0 {
		why[len(why)-1] += fmt.Sprintf(" (mode %04o)", perm)
		fix = append(fix, "chmod 644")
	}
	if len(why) == 0 {
		return nil
	}
	return &insecureError{msg: fmt.Sprintf("refused: %s; glmd runs as root, so anyone who can write this file could run code as root (%s)",
		strings.Join(why, " and "), strings.Join(fix, " and "))}
}
