package api_test

import (
	"os"
	"os/user"
	"strconv"
	"syscall"
	"testing"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/testenv"
)

func TestListen_Group(t *testing.T) {
	testenv.RequireRoot(t) // chown of the socket needs root
	// Any group but our own shows that Listen changed it.
	var g *user.Group
	for _, gid := range []string{"1", "2", "3", "4"} {
		if cand, err := user.LookupGroupId(gid); err == nil && gid != strconv.Itoa(os.Getegid()) {
			g = cand
			break
		}
	}
	if g == nil {
		testenv.Skip(t, "no group with gid 1-4 on this host")
	}
	sock := shortSocketPath(t)
	l, err := api.Listen(sock, g.Name)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	fi, err := os.Stat(sock)
	if err != nil {
		t.Fatal(err)
	}
	if gid := fi.Sys().(*syscall.Stat_t).Gid; strconv.Itoa(int(gid)) != g.Gid {
		t.Errorf("socket gid = %d, want %s (%s)", gid, g.Gid, g.Name)
	}
}
