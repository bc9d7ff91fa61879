// Package version holds the build's version, stamped by the linker:
// go build -ldflags "-X github.com/open-autoglm/glmd/internal/version.Version=1.2.3 -X ...Commit=abc".
package version

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// Version and Commit are set with -ldflags -X at build time.
var (
	Version = "dev"
	Commit  = ""
)

// String is the one-line form `glmd version` prints.
func String() string {
	c := Commit
	if c == "" {
		c = vcsRevision()
	}
	if c == "" {
		c = "unknown"
	}
	return fmt.Sprintf("glmd %s (commit %s, %s %s/%s)", Version, c, runtime.Version(), runtime.GOOS, runtime.GOARCH)
}

// vcsRevision reads the commit the go tool embedded, for builds without ldflags.
func vcsRevision() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	for _, s := range bi.Settings {
		if s.Key == "vcs.revision" {
			if len(s.Value) > 12 {
				return s.Value[:12]
			}
			return s.Value
		}
	}
	return ""
}
