package config

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"
)

func writeAgent(t *testing.T, data string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "glmd.toml")
	if err := os.WriteFile(p, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultAgent(t *testing.T) {
	a := DefaultAgent()
	host, _ := os.Hostname()
	want := Agent{
		NodeName: host, ConfDir: "/etc/glmd/conf.d", StateDir: "/var/lib/glmd", LogDir: "/var/log/glmd",
		Socket: "/run/glmd/glmd.sock", SocketGroup: "glmd", LogLevel: "info", LogFormat: "text",
		Metrics: Metrics{Listen: "127.0.0.1:9465"}, Cgroup: Cgroup{Mode: "auto"},
		GPU:    GPUConfig{Provider: "auto", Health: GPUHealth{PollInterval: 30 * time.Second}},
		Consul: Consul{Address: "127.0.0.1:8500", KVPrefix: "glmd/", ServicePrefix: "glmd"},
		Cron:   CronConfig{Timezone: "UTC"},
	}
	if host == "" {
		want.NodeName = "localhost"
	}
	if !reflect.DeepEqual(*a, want) {
		t.Errorf("DefaultAgent() = %+v\nwant %+v", *a, want)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("defaults do not validate: %v", err)
	}
}

func TestDevAgent(t *testing.T) {
	a := DevAgent("/home/me/proj")
	if !a.Dev || a.File != "" {
		t.Errorf("Dev = %v, File = %q", a.Dev, a.File)
	}
	for got, want := range map[string]string{
		a.ConfDir:  "/home/me/proj/conf.d",
		a.StateDir: "/home/me/proj/.glmd/state",
		a.LogDir:   "/home/me/proj/.glmd/log",
		a.Socket:   "/home/me/proj/.glmd/glmd.sock",
	} {
		if got != want {
			t.Errorf("got %q, want %q", got, want)
		}
	}
	if a.SocketGroup != "" {
		t.Errorf("SocketGroup = %q, want none in dev mode", a.SocketGroup)
	}
	if a.Cgroup != (Cgroup{Mode: "auto"}) {
		t.Errorf("Cgroup = %+v, want mode auto: limits apply where the host allows", a.Cgroup)
	}
	if err := a.Validate(); err != nil {
		t.Errorf("dev config does not validate: %v", err)
	}
}

func TestLoadAgent(t *testing.T) {
	p := writeAgent(t, `node_name = "gpu01"
conf_dir = "tasks.d"          # relative to this file
state_dir = "/srv/glmd/state"
log_dir = "../logs"
socket = "/run/glmd/ctl.sock"
socket_group = ""
log_level = "debug"
log_format = "json"

[metrics]
listen = ":9465"

[cgroup]
mode = "v1"
parent = "/glmd"
`)
	a, err := LoadAgent(p)
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(p)
	want := Agent{
		File: p, NodeName: "gpu01", ConfDir: filepath.Join(dir, "tasks.d"), StateDir: "/srv/glmd/state",
		LogDir: filepath.Join(filepath.Dir(dir), "logs"), Socket: "/run/glmd/ctl.sock", SocketGroup: "",
		LogLevel: "debug", LogFormat: "json", Metrics: Metrics{Listen: ":9465"},
		Cgroup: Cgroup{Mode: "v1", Parent: "/glmd"},
	}
	def := DefaultAgent()
	want.GPU, want.Consul, want.Cron = def.GPU, def.Consul, def.Cron
	if !reflect.DeepEqual(*a, want) {
		t.Errorf("LoadAgent = %+v\nwant %+v", *a, want)
	}

	// An empty file is the defaults.
	a, err = LoadAgent(writeAgent(t, "# nothing set\n"))
	if err != nil {
		t.Fatal(err)
	}
	d := DefaultAgent()
	d.File = a.File
	if !reflect.DeepEqual(*a, *d) {
		t.Errorf("empty file = %+v, want defaults %+v", *a, *d)
	}

	// Metrics off.
	a, err = LoadAgent(writeAgent(t, "[metrics]\nlisten = \"\"\n"))
	if err != nil || a.Metrics.Listen != "" {
		t.Errorf("listen = \"\": %+v, %v", a, err)
	}

	// Every mode; parent "" is the agent's choice.
	for _, mode := range []string{"auto", "v1", "v2", "off"} {
		a, err = LoadAgent(writeAgent(t, "[cgroup]\nmode = \""+mode+"\"\nparent = \"\"\n"))
		if err != nil || a.Cgroup != (Cgroup{Mode: mode}) {
			t.Errorf("mode %q: %+v, %v", mode, a, err)
		}
	}
}

func TestLoadAgent_Errors(t *testing.T) {
	tests := []struct {
		name string
		data string
		want []string // each error line, after the file name
	}{
		{"unknown key", "node_nam = \"x\"\n", []string{`:1:1: unknown key "node_nam" (did you mean "node_name"?)`}},
		{"gpu provider", "[gpu]\nprovider = \"nvlm\"\n", []string{`:2:1: gpu.provider: "nvlm" is not a GPU provider (did you mean "nvml"? use "auto", "nvml", "static" or "none")`}},
		{"static without devices", "[gpu]\nprovider = \"static\"\n", []string{`:2:1: gpu.provider: "static" needs the GPUs listed as [[gpu.devices]] entries (index, uuid, name, memory, numa_node)`}},
		{"static device", "[gpu]\nprovider = \"static\"\n[[gpu.devices]]\nuuid = \"x\"\nmemory = \"80 GB\"\ncolor = 1\n", []string{
			`:4:1: gpu.devices[0].uuid: "x" is not a GPU UUID (such as "GPU-8b7c1e4a-...")`,
			`:5:1: gpu.devices[0].memory: "80 GB" is not a size (try "80GB" or "80GiB")`,
			`:6:1: unknown key "gpu.devices[0].color"`,
		}},
		{"xids", "[gpu.health]\nfatal_xids = [0]\npoll_interval = \"10ms\"\n", []string{
			`:2:1: gpu.health.fatal_xids: 0 is not an XID (1 to 1000)`,
			`:3:1: gpu.health.poll_interval: 10ms is too short (at least 1s; NVML calls are not free)`,
		}},
		{"consul", "[consul]\nenabled = true\nkv_prefix = \"/glmd\"\ncert_file = \"c.pem\"\nlock_delay = \"2m\"\nbogus = 1\n", []string{
			`:3:1: consul.kv_prefix: "/glmd" must not start with "/" and must end with "/" (such as "glmd/")`,
			`:4:1: consul.cert_file: cert_file and key_file go together (a client certificate needs its key)`,
			`:5:1: consul.lock_delay: 2m0s is out of range (0 to 60s, Consul's limit)`,
			`:6:1: unknown key "consul.bogus"`,
		}},
		{"cron zone", "[cron]\ntimezone = \"Mars/Olympus\"\n", []string{`:2:1: cron.timezone: "Mars/Olympus" is not a known time zone (IANA names such as "UTC", "Europe/Berlin", "America/New_York")`}},
		{"cgroup key typo", "[cgroup]\nmdoe = \"v2\"\n", []string{`:2:1: unknown key "cgroup.mdoe" (did you mean "cgroup.mode"?)`}},
		{"cgroup mode", "[cgroup]\nmode = \"v3\"\n", []string{`:2:1: cgroup.mode: "v3" is not a cgroup mode (did you mean "v1"? use "auto", "v1", "v2" or "off")`}},
		{"cgroup mode case", "cgroup.mode = \"V2\"\n", []string{`:1:1: cgroup.mode: "V2" is not a cgroup mode (did you mean "v2"? use "auto", "v1", "v2" or "off")`}},
		{"cgroup mode type", "[cgroup]\nmode = false\n", []string{`:2:1: cgroup.mode: must be a string, not a boolean`}},
		{"cgroup not a table", "cgroup = \"v2\"\n", []string{`:1:1: cgroup: must be a table, not a string (write [cgroup] on a line of its own, then its keys)`}},
		{"cgroup parent relative", "[cgroup]\nparent = \"glmd\"\n", []string{`:2:1: cgroup.parent: "glmd" is not an absolute cgroup path (try "/glmd")`}},
		{"cgroup parent root", "[cgroup]\nparent = \"/\"\n", []string{`:2:1: cgroup.parent: "/" is the root cgroup; name a cgroup of glmd's own below it, such as "/glmd"`}},
		{"cgroup parent root again", "[cgroup]\nparent = \"//\"\n", []string{`:2:1: cgroup.parent: "//" is the root cgroup; name a cgroup of glmd's own below it, such as "/glmd"`}},
		{"cgroup parent dotdot", "[cgroup]\nparent = \"/glmd/../system.slice\"\n", []string{`:2:1: cgroup.parent: "/glmd/../system.slice" must not contain ".."`}},
		{"cgroup parent unclean", "[cgroup]\nparent = \"/glmd/\"\n", []string{`:2:1: cgroup.parent: "/glmd/" is not a clean path (try "/glmd")`}},
		{"cgroup parent mount", "[cgroup]\nparent = \"/sys/fs/cgroup/glmd\"\n", []string{`:2:1: cgroup.parent: "/sys/fs/cgroup/glmd" is a path in the file system; write the cgroup's path below the cgroup mount, such as "/glmd"`}},
		{"cgroup parent control", "[cgroup]\nparent = \"/glmd\\n\"\n", []string{`:2:1: cgroup.parent: "/glmd\n" contains a control character`}},
		{"bad level", "log_level = \"verbose\"\n", []string{`:1:1: log_level: "verbose" is not a log level (use "debug", "info", "warn" or "error")`}},
		{"level typo", "log_level = \"warning\"\n", []string{`:1:1: log_level: "warning" is not a log level (did you mean "warn"? use "debug", "info", "warn" or "error")`}},
		{"bad format", "log_format = \"jsno\"\n", []string{`:1:1: log_format: "jsno" is not a log format (did you mean "json"? use "text" or "json")`}},
		{"listen without port", "metrics.listen = \"9465\"\n", []string{`:1:1: metrics.listen: "9465" is not host:port (try "127.0.0.1:9465")`}},
		{"listen bad port", "[metrics]\nlisten = \"localhost:http-alt\"\n", []string{`:2:1: metrics.listen: "localhost:http-alt": port "http-alt" is not a number from 0 to 65535`}},
		{"listen garbage", "[metrics]\nlisten = \"no way\"\n", []string{`:2:1: metrics.listen: "no way" is not host:port (try "127.0.0.1:9465", or "" to turn metrics off)`}},
		{"wrong types, all reported", "node_name = 1\nsocket = true\nmetrics = \"on\"\n", []string{
			`:1:1: node_name: must be a string, not an integer (try "1")`,
			`:2:1: socket: must be a string, not a boolean`,
			`:3:1: metrics: must be a table, not a string (write [metrics] on a line of its own, then its keys)`,
		}},
		{"empty dir, long socket", "state_dir = \"\"\nsocket = \"/" + strings.Repeat("s", 120) + "\"\n", []string{
			`:1:1: state_dir: must not be empty`,
			`:2:1: socket: "/` + strings.Repeat("s", 120) + `" is 121 bytes long; a Unix socket path can be at most 107`,
		}},
		{"syntax", "node_name = \n", []string{`:1:13: syntax error: expected value but found '\n' instead`}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := writeAgent(t, tt.data)
			a, err := LoadAgent(p)
			if err == nil {
				t.Fatalf("no error, got %+v", a)
			}
			var want []string
			for _, w := range tt.want {
				want = append(want, p+w)
			}
			if got := err.Error(); got != strings.Join(want, "\n") {
				t.Errorf("error:\n%s\nwant:\n%s", got, strings.Join(want, "\n"))
			}
			var fe *FileError
			if !errors.As(err, &fe) || fe.File != p {
				t.Errorf("error is not a *FileError naming the file: %#v", err)
			}
		})
	}
}

func TestLoadAgent_Missing(t *testing.T) {
	_, err := LoadAgent(filepath.Join(t.TempDir(), "nope.toml"))
	if !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("error = %v, want fs.ErrNotExist", err)
	}
}

func TestAgent_SlogLevel(t *testing.T) {
	for level, want := range map[string]string{"debug": "DEBUG", "info": "INFO", "warn": "WARN", "error": "ERROR", "": "INFO"} {
		if got := (&Agent{LogLevel: level}).SlogLevel().String(); got != want {
			t.Errorf("SlogLevel(%q) = %s, want %s", level, got, want)
		}
	}
}

// TestAgent_Validate_Cgroup: a [cgroup] built from flags is checked as a
// file's would be.
func TestAgent_Validate_Cgroup(t *testing.T) {
	a := DefaultAgent()
	a.Cgroup = Cgroup{Mode: "hybrid", Parent: "glmd"}
	err := a.Validate()
	want := `glmd config: cgroup.mode: "hybrid" is not a cgroup mode (use "auto", "v1", "v2" or "off")` + "\n" +
		`glmd config: cgroup.parent: "glmd" is not an absolute cgroup path (try "/glmd")`
	if err == nil || err.Error() != want {
		t.Errorf("Validate() = %v\nwant %s", err, want)
	}
	for _, p := range []string{"/glmd", "/system.slice/glmd.service/tasks", "/a b"} {
		a.Cgroup = Cgroup{Mode: CgroupV2, Parent: p}
		if err := a.Validate(); err != nil {
			t.Errorf("parent %q: %v", p, err)
		}
	}
}
