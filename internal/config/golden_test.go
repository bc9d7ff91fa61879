package config

import (
	"bytes"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"testing/fstest"
)

var update = flag.Bool("update", false, "rewrite the golden files under testdata")

// testEnvFiles serves env files for golden cases: /etc/glmd/env/NAME is
// testdata/env/NAME; everything else does not exist.
func testEnvFiles(path string) ([]byte, error) {
	if name, ok := strings.CutPrefix(path, "/etc/glmd/env/"); ok && !strings.Contains(name, "/") {
		return os.ReadFile(filepath.Join("testdata", "env", name))
	}
	return nil, &fs.PathError{Op: "open", Path: path, Err: fs.ErrNotExist}
}

// testDevices are the block devices tests see, as StatDevice: two NVMe
// disks, /dev/sda with two partitions, a device-mapper volume and an md
// array; /dev/null is a character device, /srv/models a directory;
// nothing else exists.
func testDevices(path string) (BlockDevice, error) {
	devices := map[string]BlockDevice{
		"/dev/nvme0n1":   {Major: 259, Minor: 0},
		"/dev/nvme0n1p1": {Major: 259, Minor: 0, Disk: "nvme0n1"},
		"/dev/nvme1n1":   {Major: 259, Minor: 2},
		"/dev/sda":       {Major: 8, Minor: 0},
		"/dev/sda1":      {Major: 8, Minor: 0, Disk: "sda"},
		"/dev/sda2":      {Major: 8, Minor: 0, Disk: "sda"},
		"/dev/sdb":       {Major: 8, Minor: 16},
		"/dev/dm-0":      {Major: 253, Minor: 0},
		"/dev/md0":       {Major: 9, Minor: 0},
		// A link, as udev makes them.
		"/dev/disk/by-id/nvme-glm-models": {Major: 259, Minor: 2},
	}
	if d, ok := devices[path]; ok {
		return d, nil
	}
	switch path {
	case "/dev/null":
		return BlockDevice{}, &notBlockDeviceError{mode: fs.ModeDevice | fs.ModeCharDevice | 0o666}
	case "/srv/models":
		return BlockDevice{}, &notBlockDeviceError{mode: fs.ModeDir | 0o755}
	}
	return BlockDevice{}, &fs.PathError{Op: "stat", Path: path, Err: fs.ErrNotExist}
}

// loadCase loads one testdata file as the only file of a conf.d.
func loadCase(t *testing.T, path string) ([]*Task, []*FileError) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	fsys := fstest.MapFS{filepath.Base(path): {Data: data, Mode: 0o644}}
	return LoadTasks(fsys, LoadOptions{Node: "gpu01", Dir: "conf.d", ReadFile: testEnvFiles, StatDevice: testDevices})
}

func checkGolden(t *testing.T, path string, got []byte) {
	t.Helper()
	if *update {
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test ./internal/config -update to write it)", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("%s differs (run with -update to accept)\n--- got\n%s--- want\n%s", path, got, want)
	}
}

func TestLoadTasks_InvalidGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/invalid/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) < 20 {
		t.Fatalf("only %d invalid cases under testdata/invalid", len(cases))
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".toml")
		t.Run(name, func(t *testing.T) {
			tasks, errs := loadCase(t, path)
			if len(tasks) != 0 {
				t.Errorf("invalid file gave task %+v", tasks[0])
			}
			if len(errs) == 0 {
				t.Fatal("no errors")
			}
			var b bytes.Buffer
			for _, e := range errs {
				if e.File != "conf.d/"+filepath.Base(path) {
					t.Errorf("error names file %q: %v", e.File, e)
				}
				if e.Task == "" {
					t.Errorf("error names no task: %v", e)
				}
				b.WriteString(e.Error() + "\n")
			}
			checkGolden(t, strings.TrimSuffix(path, ".toml")+".golden", b.Bytes())
		})
	}
}

func TestLoadTasks_ValidGolden(t *testing.T) {
	cases, err := filepath.Glob("testdata/valid/*.toml")
	if err != nil {
		t.Fatal(err)
	}
	if len(cases) == 0 {
		t.Fatal("no valid cases under testdata/valid")
	}
	for _, path := range cases {
		name := strings.TrimSuffix(filepath.Base(path), ".toml")
		t.Run(name, func(t *testing.T) {
			tasks, errs := loadCase(t, path)
			for _, e := range errs {
				t.Errorf("unexpected error: %v", e)
			}
			if len(tasks) != 1 {
				t.Fatalf("got %d tasks, want 1", len(tasks))
			}
			var got bytes.Buffer
			enc := json.NewEncoder(&got)
			enc.SetEscapeHTML(false)
			enc.SetIndent("", "  ")
			if err := enc.Encode(viewTask(tasks[0])); err != nil {
				t.Fatal(err)
			}
			checkGolden(t, strings.TrimSuffix(path, ".toml")+".json", got.Bytes())
		})
	}
}

// taskView is a Task as the golden files show it: keys as in the task
// file, durations and signals as written.
type taskView struct {
	Name        string                       `json:"name"`
	File        string                       `json:"file"`
	Kind        Kind                         `json:"kind"`
	Command     []string                     `json:"command"`
	Shell       bool                         `json:"shell"`
	Workdir     string                       `json:"workdir"`
	User        string                       `json:"user"`
	Group       string                       `json:"group"`
	Umask       string                       `json:"umask"`
	Env         map[string]string            `json:"env"`
	EnvFiles    []string                     `json:"env_file"` // as written, "-" for optional
	EnvFileVars map[string]map[string]string `json:"env_file_vars"`
	Instances   int                          `json:"instances"`
	DependsOn   []string                     `json:"depends_on"`
	Enabled     bool                         `json:"enabled"`
	Port        int                          `json:"port"`
	Ports       map[string]int               `json:"ports"`
	Restart     struct {
		Policy       RestartPolicy `json:"policy"`
		SuccessCodes []int         `json:"success_codes"`
		Delay        string        `json:"delay"`
		MaxDelay     string        `json:"max_delay"`
		MinUptime    string        `json:"min_uptime"`
		Limit        int           `json:"limit"`
		Window       string        `json:"window"`
	} `json:"restart"`
	Stop struct {
		Signal  string `json:"signal"`
		Timeout string `json:"timeout"`
	} `json:"stop"`
	Logs struct {
		MaxSize     int64  `json:"max_size"`
		MaxFiles    int    `json:"max_files"`
		MaxAge      string `json:"max_age"`
		RotateEvery string `json:"rotate_every"`
		Compress    bool   `json:"compress"`
		MergeStderr bool   `json:"merge_stderr"`
	} `json:"logs"`
	Resources resourcesView `json:"resources"`
	Health    []healthView  `json:"health,omitempty"`
}

// healthView shows a check with the keys of its type only.
type healthView struct {
	Role             HealthRole        `json:"role"`
	Type             ProbeType         `json:"type"`
	URL              string            `json:"url,omitempty"`
	Method           string            `json:"method,omitempty"`
	Headers          map[string]string `json:"headers,omitempty"`
	Body             string            `json:"body,omitempty"`
	Status           string            `json:"status,omitempty"`
	BodyContains     string            `json:"body_contains,omitempty"`
	Address          string            `json:"address,omitempty"`
	Service          *string           `json:"service,omitempty"` // grpc only, "" included
	Command          []string          `json:"command,omitempty"`
	Interval         string            `json:"interval"`
	Timeout          string            `json:"timeout"`
	InitialDelay     string            `json:"initial_delay"`
	FailureThreshold int               `json:"failure_threshold"`
	SuccessThreshold int               `json:"success_threshold"`
	StartPeriod      string            `json:"start_period,omitempty"` // startup only
}

// resourcesView shows the limits a file set, and no others.
type resourcesView struct {
	CPUs          float64  `json:"cpus,omitempty"`
	CPUWeight     int      `json:"cpu_weight,omitempty"`
	CpusetCPUs    string   `json:"cpuset_cpus,omitempty"`
	CpusetMems    string   `json:"cpuset_mems,omitempty"`
	MemoryMax     int64    `json:"memory_max,omitempty"`
	MemoryHigh    int64    `json:"memory_high,omitempty"`
	MemorySwapMax *int64   `json:"memory_swap_max,omitempty"` // 0: no swap
	PidsMax       int64    `json:"pids_max,omitempty"`
	IOWeight      int      `json:"io_weight,omitempty"`
	IO            []ioView `json:"io,omitempty"`
	OOMScoreAdj   *int     `json:"oom_score_adj,omitempty"`
}

type ioView struct {
	Device    string `json:"device"`
	Limited   string `json:"limited"` // MAJOR:MINOR
	ReadBPS   uint64 `json:"read_bps,omitempty"`
	WriteBPS  uint64 `json:"write_bps,omitempty"`
	ReadIOPS  uint64 `json:"read_iops,omitempty"`
	WriteIOPS uint64 `json:"write_iops,omitempty"`
}

func viewTask(t *Task) taskView {
	v := taskView{
		Name: t.Name, File: t.File, Kind: t.Kind, Command: t.Command, Shell: t.Shell,
		Workdir: t.Workdir, User: t.User, Group: t.Group, Umask: "inherit",
		Env: t.Env, EnvFileVars: t.EnvFileVars, Instances: t.Instances,
		DependsOn: t.DependsOn, Enabled: t.Enabled, Port: t.Port, Ports: t.Ports,
	}
	for _, ef := range t.EnvFiles {
		if ef.Optional {
			v.EnvFiles = append(v.EnvFiles, "-"+ef.Path)
		} else {
			v.EnvFiles = append(v.EnvFiles, ef.Path)
		}
	}
	if t.Umask != InheritUmask {
		v.Umask = fmt.Sprintf("%04o", t.Umask)
	}
	r := t.Restart
	v.Restart.Policy, v.Restart.SuccessCodes = r.Policy, r.SuccessCodes
	v.Restart.Delay, v.Restart.MaxDelay, v.Restart.MinUptime = shortDuration(r.Delay), shortDuration(r.MaxDelay), shortDuration(r.MinUptime)
	v.Restart.Limit, v.Restart.Window = r.Limit, shortDuration(r.Window)
	v.Stop.Signal, v.Stop.Timeout = SignalName(t.Stop.Signal), shortDuration(t.Stop.Timeout)
	l := t.Logs
	v.Logs.MaxSize, v.Logs.MaxFiles, v.Logs.MaxAge, v.Logs.RotateEvery = l.MaxSize, l.MaxFiles, shortDuration(l.MaxAge), shortDuration(l.RotateEvery)
	v.Logs.Compress, v.Logs.MergeStderr = l.Compress, l.MergeStderr
	res := t.Resources
	v.Resources = resourcesView{
		CPUs: res.CPUs, CPUWeight: res.CPUWeight, CpusetCPUs: res.CpusetCPUs, CpusetMems: res.CpusetMems,
		MemoryMax: res.MemoryMax, MemoryHigh: res.MemoryHigh, PidsMax: res.PidsMax, IOWeight: res.IOWeight,
		OOMScoreAdj: res.OOMScoreAdj,
	}
	if res.MemorySwapMax != 0 || res.MemorySwapOff {
		v.Resources.MemorySwapMax = &res.MemorySwapMax
	}
	for _, d := range res.IO {
		v.Resources.IO = append(v.Resources.IO, ioView{
			Device: d.Path, Limited: fmt.Sprintf("%d:%d", d.Major, d.Minor),
			ReadBPS: d.ReadBPS, WriteBPS: d.WriteBPS, ReadIOPS: d.ReadIOPS, WriteIOPS: d.WriteIOPS,
		})
	}
	for _, c := range t.Health {
		h := healthView{
			Role: c.Role, Type: c.Type, URL: c.URL, Method: c.Method, Headers: c.Headers, Body: c.Body,
			BodyContains: c.BodyContains, Address: c.Address, Command: c.Command,
			Interval: shortDuration(c.Interval), Timeout: shortDuration(c.Timeout), InitialDelay: shortDuration(c.InitialDelay),
			FailureThreshold: c.FailureThreshold, SuccessThreshold: c.SuccessThreshold,
		}
		if c.Type == ProbeHTTP {
			h.Status = c.Status.String()
		}
		if c.Type == ProbeGRPC {
			h.Service = &c.Service
		}
		if c.Role == RoleStartup {
			h.StartPeriod = shortDuration(c.StartPeriod)
		}
		v.Health = append(v.Health, h)
	}
	return v
}
