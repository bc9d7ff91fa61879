package config

import (
	"errors"
	"io/fs"
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"

	"github.com/open-autoglm/glmd/internal/resources"
)

func TestLoadTasks_Resources(t *testing.T) {
	minusFive := -5
	tests := []struct {
		name string
		src  string
		want resources.Limits
	}{
		{"none", sleep, resources.Limits{}},
		{"empty table", sleep + "[resources]\n", resources.Limits{}},
		{"empty io", sleep + "resources.io = []\n", resources.Limits{}},
		{"integer cpus", sleep + "resources.cpus = 2\n", resources.Limits{CPUs: 2}},
		{"swap off", sleep + "resources.memory_swap_max = 0\n", resources.Limits{MemorySwapOff: true}},
		{"swap", sleep + "resources.memory_swap_max = \"1G\"\n", resources.Limits{MemorySwapMax: 1 << 30}},
		{"equal high and max", sleep + "[resources]\nmemory_max = \"1G\"\nmemory_high = 1073741824\n", resources.Limits{MemoryMax: 1 << 30, MemoryHigh: 1 << 30}},
		{"lowest", sleep + "[resources]\ncpus = 0.01\npids_max = 2\ncpu_weight = 1\nio_weight = 1\noom_score_adj = -5\n",
			resources.Limits{CPUs: 0.01, PidsMax: 2, CPUWeight: 1, IOWeight: 1, OOMScoreAdj: &minusFive}},
		{"cpusets", sleep + "[resources]\ncpuset_cpus = \"8191\"\ncpuset_mems = \"0-1,3,5-5\"\n", resources.Limits{CpusetCPUs: "8191", CpusetMems: "0-1,3,5-5"}},
		{"one io limit", sleep + "[[resources.io]]\ndevice = \"/dev/md0\"\nwrite_iops = 7\n",
			resources.Limits{IO: []resources.IODevice{{Path: "/dev/md0", Major: 9, WriteIOPS: 7}}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := mustLoad(t, tt.src, LoadOptions{StatDevice: testDevices})
			if !reflect.DeepEqual(task.Resources, tt.want) {
				t.Errorf("Resources = %+v\nwant %+v", task.Resources, tt.want)
			}
		})
	}
}

// TestLoadTasks_OOMScoreAdjNeedsNoCgroup: oom_score_adj alone is no
// reason to refuse a task where cgroups cannot be used.
func TestLoadTasks_OOMScoreAdjNeedsNoCgroup(t *testing.T) {
	task := mustLoad(t, sleep+"resources.oom_score_adj = 1000\n", LoadOptions{})
	if !task.Resources.IsZero() || task.Resources.OOMScoreAdj == nil || *task.Resources.OOMScoreAdj != 1000 {
		t.Errorf("Resources = %+v: want oom_score_adj 1000 and IsZero", task.Resources)
	}
}

func TestLoadTasks_DeviceNotes(t *testing.T) {
	fsys := fstest.MapFS{
		"a.toml": file(sleep + "[[resources.io]]\ndevice = \"/dev/sda\"\nread_bps = \"1M\"\n\n[[resources.io]]\ndevice = \"/dev/nvme0n1p1\"\nwrite_bps = \"1M\"\n"),
		"b.toml": file(sleep + "resources.io = [{ device = \"/dev/sda1\", read_iops = 10 }]\n"),
		"c.toml": file(sleep + "[[resources.io]]\ndevice = \"/dev/sda1\"\nread_iops = 10\n[[resources.io]]\ndevice = \"/dev/sda\"\nread_iops = 10\n"),
	}
	want := []string{
		"conf.d/a.toml:7:1: resources.io[1].device: /dev/nvme0n1p1 is a partition: its limits apply to the whole disk nvme0n1 (259:0), as IO limits apply to whole disks",
		"conf.d/b.toml:2:1: resources.io[0].device: /dev/sda1 is a partition: its limits apply to the whole disk sda (8:0), as IO limits apply to whole disks",
	} // none for c.toml: a file with errors gets them, not notes
	var notes []string
	opts := LoadOptions{Dir: "conf.d", StatDevice: testDevices, Note: func(e *FileError) {
		if e.Task == "" || e.File == "" {
			t.Errorf("note without task or file: %+v", e)
		}
		notes = append(notes, e.Error())
	}}
	tasks, errs := LoadTasks(fsys, opts)
	if !slices.Equal(taskNames(tasks), []string{"a", "b"}) {
		t.Errorf("tasks %q, want a and b", taskNames(tasks))
	}
	wantErr := "conf.d/c.toml:6:1: resources.io[1].device: /dev/sda is on the same disk as /dev/sda1 of resources.io[0], sda (8:0), and IO limits apply to whole disks (one entry per disk)"
	if lines := errorLines(errs); !slices.Equal(lines, []string{wantErr}) {
		t.Errorf("errors:\n%s\nwant\n%s", strings.Join(lines, "\n"), wantErr)
	}
	if !slices.Equal(notes, want) {
		t.Errorf("notes:\n%s\nwant\n%s", strings.Join(notes, "\n"), strings.Join(want, "\n"))
	}
	// A Loader notes the same on every load, cached or not.
	loader := NewLoader(opts)
	for _, pass := range []string{"first", "cached"} {
		notes = nil
		loader.Load(fsys)
		if !slices.Equal(notes, want) {
			t.Errorf("%s Loader load, notes:\n%s\nwant\n%s", pass, strings.Join(notes, "\n"), strings.Join(want, "\n"))
		}
	}
	// No Note, no trouble.
	opts.Note = nil
	if tasks, _ := LoadTasks(fsys, opts); len(tasks) != 2 {
		t.Errorf("without Note: %d tasks", len(tasks))
	}
}

// TestLoadTasks_DeviceLookupOnce: each path is looked up once per load,
// however many entries and files name it.
func TestLoadTasks_DeviceLookupOnce(t *testing.T) {
	calls := map[string]int{}
	stat := func(p string) (BlockDevice, error) {
		calls[p]++
		return testDevices(p)
	}
	io := "[[resources.io]]\ndevice = \"/dev/sda\"\nread_iops = 1\n[[resources.io]]\ndevice = \"/dev/sdb\"\nread_iops = 1\n"
	fsys := fstest.MapFS{"a.toml": file(sleep + io), "b.toml": file(sleep + io), "c.toml": file(sleep)}
	loader := NewLoader(LoadOptions{StatDevice: stat})
	for load := 1; load <= 2; load++ {
		tasks, errs := loader.Load(fsys)
		if len(tasks) != 3 || len(errs) > 0 {
			t.Fatalf("tasks %q, errors %q", taskNames(tasks), errorLines(errs))
		}
		if want := map[string]int{"/dev/sda": load, "/dev/sdb": load}; !reflect.DeepEqual(calls, want) {
			t.Errorf("load %d: lookups %v, want %v", load, calls, want)
		}
	}
}

func TestLoadTasks_DeviceErrors(t *testing.T) {
	odd := errors.New("sysfs is odd")
	tests := []struct {
		err  error
		want string
		is   error
	}{
		{fsNotExist("/dev/x"), "/dev/x: no such device (lsblk lists the block devices)", nil},
		{&notBlockDeviceError{mode: fs.ModeNamedPipe}, "/dev/x: not a block device but a named pipe (name a disk or partition such as /dev/nvme0n1; lsblk lists them)", ErrNotBlockDevice},
		{&notBlockDeviceError{mode: 0o644}, "/dev/x: not a block device but a regular file (name the device that holds it: findmnt -no SOURCE -T /dev/x)", ErrNotBlockDevice},
		{&fs.PathError{Op: "stat", Path: "/dev/x", Err: fs.ErrPermission}, "/dev/x: permission denied", fs.ErrPermission},
		{odd, "/dev/x: sysfs is odd", odd},
	}
	for _, tt := range tests {
		t.Run(tt.want, func(t *testing.T) {
			stat := func(string) (BlockDevice, error) { return BlockDevice{}, tt.err }
			_, errs := LoadTasks(fstest.MapFS{"x.toml": file(sleep + "[[resources.io]]\ndevice = \"/dev/x\"\nread_iops = 1\n")}, LoadOptions{StatDevice: stat})
			want := "x.toml:3:1: resources.io[0].device: " + tt.want
			if lines := errorLines(errs); !slices.Equal(lines, []string{want}) {
				t.Errorf("errors %q, want %q", lines, want)
			}
			if len(errs) == 1 && tt.is != nil && !errors.Is(errs[0], tt.is) {
				t.Errorf("error does not wrap %v", tt.is)
			}
		})
	}
}

func TestKeyHint_Resources(t *testing.T) {
	tests := []struct{ src, want string }{ // sleep is line 1
		{"[resources]\ndevice = \"/dev/sda\"\n", `x.toml:3:1: unknown key "resources.device" (did you mean "resources.io.device"? it belongs in [[resources.io]])`},
		{"[resources]\nio_read_bps = 1\n", `x.toml:3:1: unknown key "resources.io_read_bps" (did you mean "resources.io.read_bps"? it belongs in [[resources.io]])`},
		{"[resources]\nMemoryMax = \"1G\"\n", `x.toml:3:1: unknown key "resources.MemoryMax" (did you mean "resources.memory_max"?)`},
		{"[[resources.io]]\ndevice = \"/dev/sda\"\nread_bps = 1\ninstances = 2\n", `x.toml:5:1: unknown key "resources.io[0].instances" (did you mean "instances"? it belongs at the top of the file, before any [table])`},
		{"[[resources.io]]\ndevice = \"/dev/sda\"\nread_bps = 1\n[[resources.io]]\ndevice = \"/dev/sdb\"\nwiops = 1\n", `x.toml:7:1: unknown key "resources.io[1].wiops" (did you mean "resources.io[1].write_iops"?)`},
		{"[[resources.io]]\ndevice = \"/dev/sda\"\nread_bps = 1\ndelay = \"1s\"\n", `x.toml:5:1: unknown key "resources.io[0].delay" (did you mean "restart.delay"? it belongs in [restart])`},
	}
	for _, tt := range tests {
		_, errs := LoadTasks(fstest.MapFS{"x.toml": file(sleep + tt.src)}, LoadOptions{StatDevice: testDevices})
		if lines := errorLines(errs); !slices.Equal(lines, []string{tt.want}) {
			t.Errorf("errors %q\nwant %q", lines, tt.want)
		}
	}
}

func TestCheckIDList(t *testing.T) {
	ok := []string{"0", "0-7", "0-7,16", "3,1,2", "0-0", "8191", "0-3,2", "007"}
	for _, s := range ok {
		if err := checkIDList(s, "CPU", maxCPUIDs); err != nil {
			t.Errorf("%q: %v", s, err)
		}
	}
	bad := map[string]string{
		"":           "must not be empty (leave it out to allow every CPU)",
		"8192":       `"8192": CPU 8192 is out of range (0 to 8191)`,
		"0-8192":     `"0-8192": CPU 8192 is out of range (0 to 8191)`,
		"7-0":        `"7-0": the range "7-0" runs backwards (try "0-7")`,
		"0,,1":       `"0,,1" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"0-":         `"0-" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"-1":         `"-1" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"+1":         `"+1" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"0-1-2":      `"0-1-2" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"0-31:1/4":   `"0-31:1/4" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"all":        `"all" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"0 - 3":      `"0 - 3" is not a CPU list (no spaces: try "0-3")`,
		"0, x":       `"0, x" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
		"999999999":  `"999999999": CPU 999999999 is out of range (0 to 8191)`,
		"9999999999": `"9999999999" is not a CPU list (numbers and ranges separated by commas, such as "0-7,16")`,
	}
	for s, want := range bad {
		err := checkIDList(s, "CPU", maxCPUIDs)
		if err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", s, err, want)
		}
	}
}

func TestFormatSize(t *testing.T) {
	for n, want := range map[int64]string{
		1 << 20: "1MiB", 1536 << 20: "1536MiB", 4 << 30: "4GiB", 1 << 50: "1PiB", 1000: "1000 bytes", 2048: "2KiB",
	} {
		if got := formatSize(n); got != want {
			t.Errorf("formatSize(%d) = %q, want %q", n, got, want)
		}
	}
}
