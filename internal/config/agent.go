package config

import (
	"cmp"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"os"
	"path"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
)

// Defaults of glmd.toml.
const (
	DefaultAgentFile   = "/etc/glmd/glmd.toml"
	DefaultConfDir     = "/etc/glmd/conf.d"
	DefaultStateDir    = "/var/lib/glmd"
	DefaultLogDir      = "/var/log/glmd"
	DefaultSocket      = "/run/glmd/glmd.sock"
	DefaultSocketGroup = "glmd"
	DefaultListen      = "127.0.0.1:9465"
)

// maxSocketPath: sun_path holds 108 bytes, one of them the terminating NUL.
const maxSocketPath = 107

// Agent is glmd's own configuration, glmd.toml.
type Agent struct {
	File        string     // where it was read from; "" for defaults / --dev
	NodeName    string     // node_name; default: the host name
	ConfDir     string     // conf_dir: the task files
	StateDir    string     // state_dir
	LogDir      string     // log_dir: task logs, <log_dir>/<task>/<instance>.stdout.log
	Socket      string     // socket: the control API's Unix socket
	SocketGroup string     // socket_group: group of the socket (mode 0660), used only when the group exists; "" = none
	LogLevel    string     // log_level: debug, info, warn or error
	LogFormat   string     // log_format: text or json
	Metrics     Metrics    // [metrics]
	Cgroup      Cgroup     // [cgroup]
	GPU         GPUConfig  // [gpu]
	Consul      Consul     // [consul]
	Cron        CronConfig // [cron]
	Dev         bool       // started with --dev: no root, no Consul, no GPU needed
}

// Metrics is the [metrics] table of glmd.toml.
type Metrics struct {
	Listen string // host:port of the Prometheus endpoint (/metrics); "" = off
}

// Cgroup is the [cgroup] table of glmd.toml: how the agent puts each
// instance into a cgroup of its own (docs/cgroups.md).
type Cgroup struct {
	Mode string // CgroupAuto, CgroupV1, CgroupV2 or CgroupOff
	// Parent is the cgroup the agent creates the instances' cgroups under,
	// as a path below the cgroup mount ("/glmd"); "" = the agent picks
	// (its own delegated subtree under systemd).
	Parent string
}

// Values of [cgroup] mode.
const (
	CgroupAuto = "auto" // detect the host's layout: v2, v1, or v1 with a unified twin (hybrid)
	CgroupV1   = "v1"
	CgroupV2   = "v2"
	CgroupOff  = "off" // no cgroups: tasks with resource limits do not start
)

// agentKeys is the schema of glmd.toml.
var agentKeys = &keySet{
	keys: map[string]*keySet{
		"node_name": nil, "conf_dir": nil, "state_dir": nil, "log_dir": nil,
		"socket": nil, "socket_group": nil, "log_level": nil, "log_format": nil,
		"metrics": {keys: map[string]*keySet{"listen": nil}},
		"cgroup":  {keys: map[string]*keySet{"mode": nil, "parent": nil}},
		"gpu":     agentGPUKeys,
		"consul":  agentConsulKeys,
		"cron":    agentCronKeys,
	},
}

var nodeNameRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_.-]{0,252}$`)

// DefaultAgent returns the configuration glmd runs with when glmd.toml sets nothing.
func DefaultAgent() *Agent {
	host, err := os.Hostname()
	if err != nil || host == "" {
		host = "localhost"
	}
	return &Agent{
		NodeName:    host,
		ConfDir:     DefaultConfDir,
		StateDir:    DefaultStateDir,
		LogDir:      DefaultLogDir,
		Socket:      DefaultSocket,
		SocketGroup: DefaultSocketGroup,
		LogLevel:    "info",
		LogFormat:   "text",
		Metrics:     Metrics{Listen: DefaultListen},
		Cgroup:      Cgroup{Mode: CgroupAuto},
		GPU:         GPUConfig{Provider: GPUAuto, Health: GPUHealth{PollInterval: DefaultGPUPollInterval}},
		Consul:      Consul{Address: DefaultConsulAddress, KVPrefix: DefaultKVPrefix, ServicePrefix: DefaultServicePrefix},
		Cron:        CronConfig{Timezone: "UTC"},
	}
}

// DevAgent returns the configuration of `glmd --dev` run in dir: task
// files in dir/conf.d, state, logs and the socket under dir/.glmd/, no
// socket group (the agent is not root). [cgroup] mode stays "auto": where
// the agent cannot use cgroups, tasks start without their limits and say so.
func DevAgent(dir string) *Agent {
	a := DefaultAgent()
	hidden := filepath.Join(dir, ".glmd")
	a.ConfDir = filepath.Join(dir, "conf.d")
	a.StateDir = filepath.Join(hidden, "state")
	a.LogDir = filepath.Join(hidden, "log")
	a.Socket = filepath.Join(hidden, "glmd.sock")
	a.SocketGroup = ""
	a.Dev = true
	return a
}

// LoadAgent reads glmd.toml at path: decode, defaults, validate. Relative
// paths in the file are taken relative to the file's directory. All
// problems are returned together, each a *FileError; a missing file
// satisfies errors.Is(err, fs.ErrNotExist).
func LoadAgent(path string) (*Agent, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("read agent config: %w", err)
	}
	doc, synErr := parseDocument(path, "", data)
	if synErr != nil {
		return nil, synErr
	}
	a := DefaultAgent()
	a.File = path
	base := filepath.Dir(path)
	if abs, err := filepath.Abs(path); err == nil {
		base = filepath.Dir(abs)
	}

	doc.checkKeys(agentKeys)
	if s, ok := doc.str("node_name"); ok {
		a.NodeName = s
	}
	for _, p := range []struct {
		key string
		dst *string
	}{
		{"conf_dir", &a.ConfDir}, {"state_dir", &a.StateDir}, {"log_dir", &a.LogDir}, {"socket", &a.Socket},
	} {
		if s, ok := doc.str(p.key); ok {
			*p.dst = s
			if s != "" && !filepath.IsAbs(s) {
				*p.dst = filepath.Join(base, s)
			}
		}
	}
	if s, ok := doc.str("socket_group"); ok {
		a.SocketGroup = s
	}
	if s, ok := doc.str("log_level"); ok {
		a.LogLevel = s
	}
	if s, ok := doc.str("log_format"); ok {
		a.LogFormat = s
	}
	if _, ok := doc.table("metrics"); ok {
		if s, ok := doc.str("metrics", "listen"); ok {
			a.Metrics.Listen = s
		}
	}
	if _, ok := doc.table("cgroup"); ok {
		if s, ok := doc.str("cgroup", "mode"); ok {
			a.Cgroup.Mode = s
		}
		if s, ok := doc.str("cgroup", "parent"); ok {
			a.Cgroup.Parent = s
		}
	}
	a.decodeGPU(doc)
	a.decodeConsul(doc)
	a.Consul.resolveFiles(base)
	if _, ok := doc.table("cron"); ok {
		if s, ok := doc.str("cron", "timezone"); ok {
			a.Cron.Timezone = s
		}
	}
	a.validate(doc)
	if len(doc.errs) > 0 {
		sortFileErrors(doc.errs)
		errs := make([]error, len(doc.errs))
		for i, e := range doc.errs {
			errs[i] = e
		}
		return nil, errors.Join(errs...)
	}
	return a, nil
}

// Validate checks a configuration built from defaults and flags, the way
// LoadAgent checks a file.
func (a *Agent) Validate() error {
	doc := &document{path: cmp.Or(a.File, "glmd config"), given: map[string]bool{}, bad: map[string]bool{}}
	a.validate(doc)
	errs := make([]error, len(doc.errs))
	for i, e := range doc.errs {
		errs[i] = e
	}
	return errors.Join(errs...)
}

func (a *Agent) validate(doc *document) {
	if !nodeNameRE.MatchString(a.NodeName) && doc.ok("node_name") {
		doc.errorf("node_name", "%q is not a valid node name (letters, digits, '_', '.' or '-', starting with a letter or digit)", a.NodeName)
	}
	for _, p := range []struct{ key, val string }{
		{"conf_dir", a.ConfDir}, {"state_dir", a.StateDir}, {"log_dir", a.LogDir}, {"socket", a.Socket},
	} {
		if p.val == "" && doc.ok(p.key) {
			doc.errorf(p.key, "must not be empty")
		}
	}
	if len(a.Socket) > maxSocketPath && doc.ok("socket") {
		doc.errorf("socket", "%q is %d bytes long; a Unix socket path can be at most %d", a.Socket, len(a.Socket), maxSocketPath)
	}
	if doc.ok("log_level") {
		if _, err := parseLevel(a.LogLevel); err != nil {
			doc.errorAt("log_level", "log_level", err)
		}
	}
	if doc.ok("log_format") && a.LogFormat != "text" && a.LogFormat != "json" {
		hint := ""
		if best := closest(a.LogFormat, []string{"text", "json"}); best != "" {
			hint = fmt.Sprintf("did you mean %q? ", best)
		}
		doc.errorf("log_format", "%q is not a log format (%suse \"text\" or \"json\")", a.LogFormat, hint)
	}
	if doc.ok("metrics.listen") && a.Metrics.Listen != "" {
		if err := checkListen(a.Metrics.Listen); err != nil {
			doc.errorAt("metrics.listen", "metrics.listen", err)
		}
	}
	modes := []string{CgroupAuto, CgroupV1, CgroupV2, CgroupOff}
	if doc.ok("cgroup.mode") && !slices.Contains(modes, a.Cgroup.Mode) {
		hint := ""
		if best := closest(a.Cgroup.Mode, modes); best != "" {
			hint = fmt.Sprintf("did you mean %q? ", best)
		}
		doc.errorf("cgroup.mode", "%q is not a cgroup mode (%suse \"auto\", \"v1\", \"v2\" or \"off\")", a.Cgroup.Mode, hint)
	}
	if doc.ok("cgroup.parent") && a.Cgroup.Parent != "" {
		if err := checkCgroupParent(a.Cgroup.Parent); err != nil {
			doc.errorAt("cgroup.parent", "cgroup.parent", err)
		}
	}
	a.validateSections(doc)
}

// checkCgroupParent accepts a clean absolute cgroup path other than the
// root: the agent creates and removes cgroups below it, and the root's
// children belong to the init system.
func checkCgroupParent(p string) error {
	const mount = "/sys/fs/cgroup"
	switch {
	case p == mount || strings.HasPrefix(p, mount+"/"):
		return fmt.Errorf("%q is a path in the file system; write the cgroup's path below the cgroup mount, such as \"/glmd\"", p)
	case !strings.HasPrefix(p, "/"):
		return fmt.Errorf("%q is not an absolute cgroup path (try %q)", p, path.Clean("/"+p))
	case slices.Contains(strings.Split(p, "/"), ".."):
		return fmt.Errorf("%q must not contain \"..\"", p)
	case path.Clean(p) == "/":
		return fmt.Errorf("%q is the root cgroup; name a cgroup of glmd's own below it, such as \"/glmd\"", p)
	case path.Clean(p) != p:
		return fmt.Errorf("%q is not a clean path (try %q)", p, path.Clean(p))
	case strings.ContainsFunc(p, func(r rune) bool { return r < 0x20 || r == 0x7f }):
		return fmt.Errorf("%q contains a control character", p)
	}
	return nil
}

// SlogLevel returns the log level as slog's; "info" when unset.
func (a *Agent) SlogLevel() slog.Level {
	l, _ := parseLevel(a.LogLevel)
	return l
}

func parseLevel(s string) (slog.Level, error) {
	switch s {
	case "debug":
		return slog.LevelDebug, nil
	case "info", "":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	best := closest(s, []string{"debug", "info", "warn", "error"})
	if strings.EqualFold(s, "warning") {
		best = "warn"
	}
	hint := ""
	if best != "" {
		hint = fmt.Sprintf("did you mean %q? ", best)
	}
	return slog.LevelInfo, fmt.Errorf("%q is not a log level (%suse \"debug\", \"info\", \"warn\" or \"error\")", s, hint)
}

// checkListen accepts "host:port", "[::1]:port" and ":port".
func checkListen(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		hint := "try \"127.0.0.1:9465\", or \"\" to turn metrics off"
		if _, perr := strconv.Atoi(addr); perr == nil {
			hint = fmt.Sprintf("try \"127.0.0.1:%s\"", addr)
		}
		return fmt.Errorf("%q is not host:port (%s)", addr, hint)
	}
	n, err := strconv.Atoi(port)
	if err != nil || n < 0 || n > 65535 {
		return fmt.Errorf("%q: port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " \t/") {
		return fmt.Errorf("%q: %q is not a host name or IP address", addr, host)
	}
	return nil
}
