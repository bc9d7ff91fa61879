package config

import (
	"fmt"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"
)

func baseTask(t *testing.T) *Task {
	t.Helper()
	task := mustLoad(t, `command = ["srv", "{{.Port}}"]
port = 8000
ports = { metrics = 9100 }
env = { A = "1" }
env_file = ["/env/a.env"]

[resources]
oom_score_adj = 100

[[resources.io]]
device = "/dev/sda"
read_bps = "100MiB"

[[health]]
role = "readiness"
type = "http"
url = "http://127.0.0.1:{{.Port}}/ready"
headers = { Accept = "application/json" }
`, LoadOptions{ReadFile: func(p string) ([]byte, error) { return []byte("X=1\n"), nil }, StatDevice: testDevices})
	task.DependsOn = []string{"db"} // a single file cannot depend on another
	return task
}

func TestCompare(t *testing.T) {
	tests := []struct {
		key     string
		restart bool
		change  func(*Task)
	}{
		{"name", true, func(t *Task) { t.Name = "y" }},
		{"kind", true, func(t *Task) { t.Kind = KindJob }},
		{"command", true, func(t *Task) { t.Command = append(t.Command, "--x") }},
		{"shell", true, func(t *Task) { t.Shell = true }},
		{"workdir", true, func(t *Task) { t.Workdir = "/srv" }},
		{"user", true, func(t *Task) { t.User = "glm" }},
		{"group", true, func(t *Task) { t.Group = "gpu" }},
		{"umask", true, func(t *Task) { t.Umask = 0o027 }},
		{"env", true, func(t *Task) { t.Env = map[string]string{"A": "2"} }},
		{"env_file", true, func(t *Task) { t.EnvFiles = []EnvFile{{Path: "/env/a.env", Optional: true}} }},
		{"env_file", true, func(t *Task) { t.EnvFileVars = map[string]map[string]string{"/env/a.env": {"X": "2"}} }},
		{"port", true, func(t *Task) { t.Port = 9000 }},
		{"ports", true, func(t *Task) { t.Ports = map[string]int{"metrics": 9200} }},
		{"logs.merge_stderr", true, func(t *Task) { t.Logs.MergeStderr = true }},
		{"instances", false, func(t *Task) { t.Instances = 3 }},
		{"enabled", false, func(t *Task) { t.Enabled = false }},
		{"depends_on", false, func(t *Task) { t.DependsOn = nil }},
		{"restart.policy", false, func(t *Task) { t.Restart.Policy = RestartNever }},
		{"restart.success_codes", false, func(t *Task) { t.Restart.SuccessCodes = []int{0, 1} }},
		{"restart.delay", false, func(t *Task) { t.Restart.Delay = time.Second }},
		{"restart.max_delay", false, func(t *Task) { t.Restart.MaxDelay = time.Hour }},
		{"restart.min_uptime", false, func(t *Task) { t.Restart.MinUptime = time.Hour }},
		{"restart.limit", false, func(t *Task) { t.Restart.Limit = 9 }},
		{"restart.window", false, func(t *Task) { t.Restart.Window = time.Hour }},
		{"stop.signal", false, func(t *Task) { t.Stop.Signal = syscall.SIGINT }},
		{"stop.timeout", false, func(t *Task) { t.Stop.Timeout = time.Hour }},
		{"logs.max_size", false, func(t *Task) { t.Logs.MaxSize = 1 }},
		{"logs.max_files", false, func(t *Task) { t.Logs.MaxFiles = 1 }},
		{"logs.max_age", false, func(t *Task) { t.Logs.MaxAge = time.Hour }},
		{"logs.rotate_every", false, func(t *Task) { t.Logs.RotateEvery = time.Hour }},
		{"logs.compress", false, func(t *Task) { t.Logs.Compress = true }},
		{"resources.cpus", false, func(t *Task) { t.Resources.CPUs = 0.5 }},
		{"resources.cpu_weight", false, func(t *Task) { t.Resources.CPUWeight = 200 }},
		{"resources.cpuset_cpus", false, func(t *Task) { t.Resources.CpusetCPUs = "0-3" }},
		{"resources.cpuset_mems", false, func(t *Task) { t.Resources.CpusetMems = "0" }},
		{"resources.memory_max", false, func(t *Task) { t.Resources.MemoryMax = 2 << 30 }},
		{"resources.memory_high", false, func(t *Task) { t.Resources.MemoryHigh = 1 << 30 }},
		{"resources.memory_swap_max", false, func(t *Task) { t.Resources.MemorySwapMax = 1 << 30 }},
		{"resources.memory_swap_max", false, func(t *Task) { t.Resources.MemorySwapOff = true }},
		{"resources.pids_max", false, func(t *Task) { t.Resources.PidsMax = 100 }},
		{"resources.io_weight", false, func(t *Task) { t.Resources.IOWeight = 50 }},
		{"resources.io", false, func(t *Task) { t.Resources.IO[0].WriteBPS = 1 << 20 }},
		{"resources.io", false, func(t *Task) { t.Resources.IO[0].Minor = 16 }}, // the same path, renumbered
		{"resources.io", false, func(t *Task) { t.Resources.IO = nil }},
		{"resources.oom_score_adj", true, func(t *Task) { n := 500; t.Resources.OOMScoreAdj = &n }},
		{"resources.oom_score_adj", true, func(t *Task) { t.Resources.OOMScoreAdj = nil }},
		{"health", false, func(t *Task) { t.Health[0].Interval = time.Minute }},
		{"health", false, func(t *Task) { t.Health[0].URL = "http://127.0.0.1:{{.Port}}/health" }},
		{"health", false, func(t *Task) { t.Health[0].Headers = map[string]string{"Accept": "text/plain"} }},
		{"health", false, func(t *Task) { t.Health[0].Status = StatusRange{200, 200} }},
		{"health", false, func(t *Task) {
			t.Health = append(t.Health, HealthCheck{Role: RoleLiveness, Type: ProbeTCP, Address: "127.0.0.1:{{.Port}}"})
		}},
		{"health", false, func(t *Task) { t.Health = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.key, func(t *testing.T) {
			old, new := baseTask(t), baseTask(t)
			tt.change(new)
			d := Compare(old, new)
			want := Diff{InPlace: []string{tt.key}}
			if tt.restart {
				want = Diff{Restart: []string{tt.key}}
			}
			if !reflect.DeepEqual(d, want) {
				t.Errorf("Compare = %+v, want %+v", d, want)
			}
			if !d.Changed() {
				t.Error("Changed() = false")
			}
			if old.Hash() == new.Hash() {
				t.Error("hash did not change")
			}
		})
	}
}

func TestCompare_Unchanged(t *testing.T) {
	old, new := baseTask(t), baseTask(t)
	new.File = "renamed.toml"
	new.Env = map[string]string{"A": "1"}
	if d := Compare(old, new); d.Changed() {
		t.Errorf("Compare = %+v, want no change", d)
	}
	if old.Hash() != new.Hash() {
		t.Error("hash depends on File")
	}
	// nil and empty cannot be told apart in a task file.
	old.Ports, new.Ports = nil, map[string]int{}
	if d := Compare(old, new); d.Changed() {
		t.Errorf("nil vs empty ports: %+v", d)
	}
	old.Health, new.Health = nil, []HealthCheck{}
	if d := Compare(old, new); d.Changed() {
		t.Errorf("nil vs empty health: %+v", d)
	}
}

func TestCompare_Several(t *testing.T) {
	old, new := baseTask(t), baseTask(t)
	new.Instances, new.Command, new.Logs.MaxSize, new.User = 4, []string{"other"}, 1, "glm"
	want := Diff{Restart: []string{"command", "user"}, InPlace: []string{"instances", "logs.max_size"}}
	if d := Compare(old, new); !reflect.DeepEqual(d, want) {
		t.Errorf("Compare = %+v, want %+v", d, want)
	}
}

// TestCompare_CoversEveryField fails when Task gains a field that Compare
// (and the table in docs/tasks.md) does not know yet.
func TestCompare_CoversEveryField(t *testing.T) {
	var visit func(v reflect.Value, path string)
	visit = func(v reflect.Value, path string) {
		if v.Kind() == reflect.Struct && v.Type() != reflect.TypeFor[time.Duration]() {
			for i := range v.NumField() {
				visit(v.Field(i), path+"."+v.Type().Field(i).Name)
			}
			return
		}
		if path == ".File" {
			return
		}
		old, new := baseTask(t), baseTask(t)
		f := reflect.ValueOf(new).Elem()
		for _, name := range strings.Split(path[1:], ".") {
			f = f.FieldByName(name)
		}
		switch f.Kind() {
		case reflect.String:
			f.SetString(f.String() + "x")
		case reflect.Int, reflect.Int64:
			f.SetInt(f.Int() + 1)
		case reflect.Float64:
			f.SetFloat(f.Float() + 0.5)
		case reflect.Bool:
			f.SetBool(!f.Bool())
		case reflect.Pointer:
			if f.IsNil() {
				f.Set(reflect.New(f.Type().Elem()))
			} else {
				f.SetZero()
			}
		case reflect.Slice:
			f.Set(reflect.MakeSlice(f.Type(), f.Len()+1, f.Len()+1))
		case reflect.Map:
			m := reflect.MakeMap(f.Type())
			m.SetMapIndex(reflect.ValueOf("new"), reflect.Zero(f.Type().Elem()))
			f.Set(m)
		default:
			t.Fatalf("field %s: kind %s not handled by this test", path, f.Kind())
		}
		if !Compare(old, new).Changed() {
			t.Errorf("Compare does not see a change of Task%s", path)
		}
		if old.Hash() == new.Hash() {
			t.Errorf("Hash does not see a change of Task%s", path)
		}
	}
	visit(reflect.ValueOf(Task{}), "")
}

func TestHash_StableAcrossMapOrder(t *testing.T) {
	build := func(reverse bool) *Task {
		task := baseTask(t)
		task.Env = map[string]string{}
		task.EnvFileVars = map[string]map[string]string{}
		for i := range 100 {
			n := i
			if reverse {
				n = 99 - i
			}
			task.Env[fmt.Sprintf("K%d", n)] = fmt.Sprint(n)
			task.EnvFileVars[fmt.Sprintf("/env/%d", n)] = map[string]string{"V": fmt.Sprint(n)}
		}
		return task
	}
	want := build(false).Hash()
	for range 20 {
		if got := build(true).Hash(); got != want {
			t.Fatalf("hash %s != %s for the same spec", got, want)
		}
	}
	if len(want) != 64 {
		t.Errorf("hash %q is not hex SHA-256", want)
	}
}

func TestHash_EnvFileContent(t *testing.T) {
	content := "X=1\n"
	read := func(string) ([]byte, error) { return []byte(content), nil }
	src := sleep + `env_file = ["/env/a.env"]`
	first := mustLoad(t, src, LoadOptions{ReadFile: read})
	again := mustLoad(t, src, LoadOptions{ReadFile: read})
	content = "X=2\n"
	changed := mustLoad(t, src, LoadOptions{ReadFile: read})
	if first.Hash() != again.Hash() {
		t.Error("same files, different hash")
	}
	if first.Hash() == changed.Hash() {
		t.Error("env file content changed, hash did not")
	}
	if d := Compare(first, changed); !reflect.DeepEqual(d.Restart, []string{"env_file"}) || len(d.InPlace) > 0 {
		t.Errorf("Compare = %+v, want a restart for env_file", d)
	}
}
