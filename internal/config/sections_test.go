package config

import (
	"path/filepath"
	"reflect"
	"slices"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadTask_GPU(t *testing.T) {
	task := mustLoad(t, `command = ["serve"]
instances = 2
[gpu]
count = 2
min_memory = "40GiB"
model = "H100"
visible_devices_format = "index"
`, LoadOptions{})
	want := GPU{Count: 2, MinMemory: 40 << 30, Model: "H100", NUMAPin: true, VisibleDevicesFormat: "index"}
	if !reflect.DeepEqual(task.GPU, want) {
		t.Errorf("gpu = %+v, want %+v", task.GPU, want)
	}
	task = mustLoad(t, "command = [\"serve\"]\n[gpu]\nids = [3, \"GPU-8b7c1e4a-0000-1111-2222-333344445555\"]\nnuma_pin = false\n", LoadOptions{})
	if task.GPU.Count != 2 || task.GPU.NUMAPin || !slices.Equal(task.GPU.IDs, []string{"3", "GPU-8b7c1e4a-0000-1111-2222-333344445555"}) {
		t.Errorf("gpu = %+v", task.GPU)
	}
	if task := mustLoad(t, "command = [\"serve\"]\n", LoadOptions{}); task.GPU.Count != 0 {
		t.Errorf("no [gpu]: count %d", task.GPU.Count)
	}
}

func TestLoadTask_Service(t *testing.T) {
	task := mustLoad(t, `command = ["serve"]
port = 8000
instances = 2
[ports]
metrics = 9000
[service]
tags = ["glm", "i{{.Instance}}"]
meta = { model = "glm-4", node = "{{.Node}}" }
`, LoadOptions{Node: "gpu01"})
	inst, err := task.Render(Vars{Instance: 1, Node: "gpu01", Port: 8001, Ports: map[string]int{"metrics": 9001}})
	if err != nil {
		t.Fatal(err)
	}
	want := &ServiceInstance{Name: task.Name, Port: 8001, Tags: []string{"glm", "i1"}, Meta: map[string]string{"model": "glm-4", "node": "gpu01"}}
	if !reflect.DeepEqual(inst.Service, want) {
		t.Errorf("service = %+v, want %+v", inst.Service, want)
	}
	task = mustLoad(t, "command = [\"serve\"]\n[ports]\nhttp = 0\n[service]\nname = \"glm-api\"\nport = \"{{.Ports.http}}\"\n", LoadOptions{})
	inst, err = task.Render(Vars{Ports: map[string]int{"http": 41000}})
	if err != nil {
		t.Fatal(err)
	}
	if inst.Service.Name != "glm-api" || inst.Service.Port != 41000 {
		t.Errorf("service = %+v", inst.Service)
	}
}

func TestLoadTask_Cron(t *testing.T) {
	task := mustLoad(t, `kind = "cron"
command = ["export"]
schedule = "0 3 * * *"
timezone = "Europe/Berlin"
timeout = "1h"
[retry]
attempts = 3
`, LoadOptions{})
	want := Cron{
		Schedule: "0 3 * * *", Timezone: "Europe/Berlin", Concurrency: CronForbid, StartingDeadline: DefaultStartingDeadline,
		Timeout: time.Hour, Retry: Retry{Attempts: 3, Delay: DefaultRetryDelay, MaxDelay: DefaultRetryMaxDelay},
		History: DefaultCronHistory, Scope: CronNode,
	}
	if !reflect.DeepEqual(task.Cron, want) {
		t.Errorf("cron = %+v\nwant %+v", task.Cron, want)
	}
	if task.Restart.Policy != RestartNever {
		t.Errorf("restart.policy = %s, want never: [retry] decides", task.Restart.Policy)
	}
	loc, err := task.Cron.Location(nil)
	if err != nil || loc.String() != "Europe/Berlin" {
		t.Errorf("Location = %v, %v", loc, err)
	}
}

func TestLoadTask_SectionErrors(t *testing.T) {
	tests := []struct{ name, src, want string }{
		{"gpu count", "[gpu]\ncount = 65\n", `x.toml:3:1: gpu.count: 65 is out of range (0 to 64)`},
		{"gpu id", "[gpu]\nids = [\"gpu0\"]\n", `x.toml:3:1: gpu.ids: "gpu0" is neither a GPU index nor a GPU UUID (such as 0 or "GPU-8b7c1e4a-...", as nvidia-smi -L shows)`},
		{"gpu ids instances", "instances = 2\n[gpu]\nids = [0]\n", `x.toml:4:1: gpu.ids: names fixed GPUs, which 2 instances cannot all hold (use count, or one task file per instance)`},
		{"gpu count and ids", "[gpu]\ncount = 1\nids = [0, 1]\n", `x.toml:3:1: gpu.count: is 1 but gpu.ids lists 2 GPUs (leave count out: the ids say how many)`},
		{"gpu format", "[gpu]\ncount = 1\nvisible_devices_format = \"uid\"\n", `x.toml:4:1: gpu.visible_devices_format: "uid" is not a format (did you mean "uuid"? use "uuid" or "index")`},
		{"gpu without count", "[gpu]\nmodel = \"H100\"\n", `x.toml:3:1: gpu.model: has no effect without GPUs (set gpu.count, e.g. count = 1)`},
		{"gpu typo", "[gpu]\ngpus = 2\n", `x.toml:3:1: unknown key "gpu.gpus" (did you mean "gpu.count"?)`},
		{"service without port", "[service]\nname = \"x\"\nport = \"{{.Port}}\"\n", `x.toml:4:1: service.port: {{.Port}} is used but the task declares no port (set port = 8000, or port = 0 to let glmd pick one)`},
		{"service name", "port = 1\n[service]\nname = \"glm_api\"\n", `x.toml:4:1: service.name: "glm_api" is not a valid service name (letters, digits and '-', at most 63, as DNS names)`},
		{"service meta key", "port = 1\n[service]\nmeta = { \"a.b\" = \"c\" }\n", `x.toml:4:10: service.meta."a.b": "a.b" is not a valid meta key for Consul (letters, digits, '_' and '-', at most 128)`},
		{"cron on service", "schedule = \"@daily\"\n", `x.toml:2:1: schedule: is for scheduled tasks only (set kind = "cron")`},
		{"cron zone", "kind = \"cron\"\nschedule = \"@daily\"\ntimezone = \"Europe/Pari\"\n", `x.toml:4:1: timezone: "Europe/Pari" is not a known time zone (did you mean "Europe/Paris"?)`},
		{"cron concurrency", "kind = \"cron\"\nschedule = \"@daily\"\nconcurrency = \"skip\"\n", `x.toml:4:1: concurrency: "skip" is not a concurrency policy (use "forbid", "replace" or "allow")`},
		{"cron instances", "kind = \"cron\"\nschedule = \"@daily\"\ninstances = 2\n", `x.toml:4:1: instances: a scheduled task runs one process per run; instances must be 1 (use concurrency = "allow" for overlapping runs)`},
		{"cron restart", "kind = \"cron\"\nschedule = \"@daily\"\n[restart]\nlimit = 2\n", `x.toml:5:1: restart.limit: does not apply to scheduled tasks: a failed run is tried again per [retry] (attempts, delay, max_delay)`},
		{"cron attempts", "kind = \"cron\"\nschedule = \"@daily\"\n[retry]\nattempts = -1\n", `x.toml:5:1: retry.attempts: -1 is out of range (0 to 100: how many times a failed run is tried again)`},
		{"cron jitter", "kind = \"cron\"\nschedule = \"@every 1m\"\njitter = \"90s\"\n", `x.toml:4:1: jitter 1m30s: must be shorter than the time between two runs of "@every 1m0s" (1m0s)`},
		{"cron scope", "kind = \"cron\"\nschedule = \"@daily\"\nscope = \"cluster\"\n", `x.toml:4:1: scope: "cluster" is not a scope (use "node": run on every node with the file, or "fleet": once in the fleet)`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, errs := LoadTasks(fstest.MapFS{"x.toml": file("command = [\"sleep\", \"1\"]\n" + tt.src)}, LoadOptions{})
			if lines := errorLines(errs); !slices.Equal(lines, []string{tt.want}) {
				t.Errorf("errors %q\nwant %q", lines, tt.want)
			}
		})
	}
}

func TestLoadAgent_Sections(t *testing.T) {
	p := writeAgent(t, `[gpu]
provider = "static"
[[gpu.devices]]
index = 0
uuid = "GPU-00000000-0000-0000-0000-000000000000"
name = "NVIDIA H100 80GB HBM3"
memory = "80GiB"
numa_node = 0
cpus = "0-55"
[gpu.health]
ignore_xids = [13]
reset_command = ["nvidia-smi", "-r", "-i"]

[consul]
enabled = true
token_file = "consul.token"
labels = { rack = "r12" }

[cron]
timezone = "Europe/Berlin"
`)
	a, err := LoadAgent(p)
	if err != nil {
		t.Fatal(err)
	}
	wantDev := []GPUDevice{{Index: 0, UUID: "GPU-00000000-0000-0000-0000-000000000000", Name: "NVIDIA H100 80GB HBM3", Memory: 80 << 30, NUMANode: 0, CPUs: "0-55"}}
	if !reflect.DeepEqual(a.GPU.Devices, wantDev) || a.GPU.Provider != "static" {
		t.Errorf("gpu = %+v", a.GPU)
	}
	if !slices.Equal(a.GPU.Health.IgnoreXIDs, []int{13}) || len(a.GPU.Health.ResetCommand) != 3 || a.GPU.Health.PollInterval != DefaultGPUPollInterval {
		t.Errorf("gpu.health = %+v", a.GPU.Health)
	}
	if !a.Consul.Enabled || a.Consul.Address != DefaultConsulAddress || a.Consul.Labels["rack"] != "r12" ||
		a.Consul.TokenFile != filepathJoin(p, "consul.token") {
		t.Errorf("consul = %+v", a.Consul)
	}
	if a.Cron.Timezone != "Europe/Berlin" {
		t.Errorf("cron = %+v", a.Cron)
	}
}

// filepathJoin joins name to the directory of the file at p.
func filepathJoin(p, name string) string { return filepath.Join(filepath.Dir(p), name) }

func TestLoadTask_GPUIsolate(t *testing.T) {
	task := mustLoad(t, "command = [\"serve\"]\n[gpu]\ncount = 1\nisolate_devices = true\n", LoadOptions{})
	if !task.GPU.IsolateDevices {
		t.Errorf("gpu = %+v", task.GPU)
	}
}
