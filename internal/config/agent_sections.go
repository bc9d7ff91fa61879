package config

import (
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"time"
)

// GPUConfig is the [gpu] table of glmd.toml.
type GPUConfig struct {
	// Provider says where the GPUs come from: GPUAuto (NVML when it
	// loads, else the static devices when any are listed, else none),
	// GPUNVML, GPUStatic or GPUNone.
	Provider string
	Devices  []GPUDevice // [[gpu.devices]], for provider = "static"
	Health   GPUHealth   // [gpu.health]
}

// GPUDevice is one [[gpu.devices]] entry: a GPU declared by hand.
type GPUDevice struct {
	Index    int
	UUID     string
	Name     string
	Memory   int64  // bytes
	NUMANode int    // -1 = unknown
	CPUs     string // CPUs local to it ("0-55"); "" = unknown
	Minor    int    // N of /dev/nvidiaN; default: the index
}

// GPUHealth is [gpu.health]: how driver events and polls judge a GPU.
type GPUHealth struct {
	IgnoreXIDs []int // XIDs only counted, whatever NVIDIA's catalogue says
	FatalXIDs  []int // XIDs that take the GPU out of the pool
	// ResetCommand runs once an unhealthy GPU has no process left, with the
	// GPU's UUID as its last argument (e.g. ["nvidia-smi", "-r", "-i"]).
	ResetCommand []string
	PollInterval time.Duration
}

// Values of [gpu] provider.
const (
	GPUAuto   = "auto"
	GPUNVML   = "nvml"
	GPUStatic = "static"
	GPUNone   = "none"
)

// DefaultGPUPollInterval is how often the agent reads every GPU's health
// and usage when no driver event says anything.
const DefaultGPUPollInterval = 30 * time.Second

// Consul is the [consul] table of glmd.toml.
type Consul struct {
	Enabled       bool
	Address       string // host:port or URL of the local Consul agent
	TokenFile     string // file holding the ACL token; the token is never logged or given to workers
	Datacenter    string
	CAFile        string
	CertFile      string
	KeyFile       string
	KVPrefix      string // default "glmd/"; the scheduler lock is <kv_prefix>leader/scheduler
	ServicePrefix string // prefix of the IDs of the services glmd registers
	Labels        map[string]string
	CheckTTL      time.Duration // 0 = discovery's default
	LockDelay     time.Duration // 0 = discovery's default
}

// Defaults of [consul].
const (
	DefaultConsulAddress = "127.0.0.1:8500"
	DefaultKVPrefix      = "glmd/"
	DefaultServicePrefix = "glmd"
)

// CronConfig is the [cron] table of glmd.toml.
type CronConfig struct {
	Timezone string // IANA zone of schedules whose task sets none; default "UTC"
}

var gpuUUIDLoose = regexp.MustCompile(`^GPU-[0-9a-fA-F-]+$`)

var agentGPUKeys = &keySet{keys: map[string]*keySet{
	"provider": nil,
	"devices":  {array: true, keys: map[string]*keySet{"index": nil, "uuid": nil, "name": nil, "memory": nil, "numa_node": nil, "cpus": nil, "minor": nil}},
	"health":   {keys: map[string]*keySet{"ignore_xids": nil, "fatal_xids": nil, "reset_command": nil, "poll_interval": nil}},
}}

var agentConsulKeys = &keySet{keys: map[string]*keySet{
	"enabled": nil, "address": nil, "token_file": nil, "datacenter": nil,
	"ca_file": nil, "cert_file": nil, "key_file": nil, "kv_prefix": nil, "service_prefix": nil,
	"labels": {free: true}, "check_ttl": nil, "lock_delay": nil,
}}

var agentCronKeys = &keySet{keys: map[string]*keySet{"timezone": nil}}

func (a *Agent) decodeGPU(doc *document) {
	if _, ok := doc.table("gpu"); !ok {
		return
	}
	g := &a.GPU
	if s, ok := doc.str("gpu", "provider"); ok {
		g.Provider = s
	}
	if v, ok := doc.lookup("gpu", "devices"); ok {
		var entries []map[string]any
		switch v := v.(type) {
		case []map[string]any:
			entries = v
		case []any:
			for _, e := range v {
				if m, ok := e.(map[string]any); ok {
					entries = append(entries, m)
				}
			}
		default:
			doc.wrongType("gpu.devices", v, "an array of tables ([[gpu.devices]] before each GPU's keys)")
		}
		for i, m := range entries {
			g.Devices = append(g.Devices, decodeGPUDevice(doc, i, m))
		}
	}
	if _, ok := doc.lookup("gpu", "health"); ok {
		h := &g.Health
		if l, ok := doc.ints("gpu", "health", "ignore_xids"); ok {
			h.IgnoreXIDs = l
		}
		if l, ok := doc.ints("gpu", "health", "fatal_xids"); ok {
			h.FatalXIDs = l
		}
		if l, ok := doc.strs("gpu", "health", "reset_command"); ok {
			h.ResetCommand = l
		}
		if d, ok := doc.duration("gpu", "health", "poll_interval"); ok {
			h.PollInterval = d
		}
	}
}

func decodeGPUDevice(doc *document, i int, m map[string]any) GPUDevice {
	entry := fmt.Sprintf("gpu.devices[%d]", i)
	d := GPUDevice{Index: i, NUMANode: -1, Minor: -1}
	for _, k := range sortedKeys(m) {
		key := entry + "." + k
		pos := doc.posOf(key, entry, "gpu.devices", "gpu")
		switch k {
		case "index", "numa_node", "minor":
			if n, ok := doc.intValue(pos, key, m[k]); ok {
				switch k {
				case "index":
					d.Index = n
				case "numa_node":
					d.NUMANode = n
				default:
					d.Minor = n
				}
			}
		case "uuid", "name", "cpus":
			if s, ok := doc.strValue(pos, key, m[k]); ok {
				switch k {
				case "uuid":
					d.UUID = s
				case "name":
					d.Name = s
				default:
					d.CPUs = s
				}
			}
		case "memory":
			if s, ok := doc.strValue(pos, key, m[k]); ok {
				n, err := ParseByteSize(s)
				if err != nil {
					doc.errorAt(pos, key, err)
				} else {
					d.Memory = n
				}
			}
		default:
			doc.errorAt(pos, "", &unknownKeyError{key: key, hint: keyHint(agentGPUKeys, agentGPUKeys.keys["devices"], entry, k)})
		}
	}
	if d.Minor < 0 {
		d.Minor = d.Index // the driver numbers device files in PCI order, as NVML's indices
	}
	return d
}

func (a *Agent) decodeConsul(doc *document) {
	if _, ok := doc.table("consul"); !ok {
		return
	}
	c := &a.Consul
	if b, ok := doc.boolean("consul", "enabled"); ok {
		c.Enabled = b
	}
	for _, p := range []struct {
		key string
		dst *string
	}{
		{"address", &c.Address}, {"token_file", &c.TokenFile}, {"datacenter", &c.Datacenter},
		{"ca_file", &c.CAFile}, {"cert_file", &c.CertFile}, {"key_file", &c.KeyFile},
		{"kv_prefix", &c.KVPrefix}, {"service_prefix", &c.ServicePrefix},
	} {
		if s, ok := doc.str("consul", p.key); ok {
			*p.dst = s
		}
	}
	if m, ok := doc.strTable(`labels = { rack = "r12" }`, "consul", "labels"); ok {
		c.Labels = m
	}
	if d, ok := doc.duration("consul", "check_ttl"); ok {
		c.CheckTTL = d
	}
	if d, ok := doc.duration("consul", "lock_delay"); ok {
		c.LockDelay = d
	}
}

// resolveFiles makes relative file paths of [consul] relative to base.
func (c *Consul) resolveFiles(base string) {
	for _, p := range []*string{&c.TokenFile, &c.CAFile, &c.CertFile, &c.KeyFile} {
		if *p != "" && !filepath.IsAbs(*p) {
			*p = filepath.Join(base, *p)
		}
	}
}

func (a *Agent) validateSections(doc *document) {
	g := &a.GPU
	providers := []string{GPUAuto, GPUNVML, GPUStatic, GPUNone}
	if doc.ok("gpu.provider") && !slices.Contains(providers, g.Provider) {
		hint := ""
		if best := closest(g.Provider, providers); best != "" {
			hint = fmt.Sprintf("did you mean %q? ", best)
		}
		doc.errorf("gpu.provider", "%q is not a GPU provider (%suse \"auto\", \"nvml\", \"static\" or \"none\")", g.Provider, hint)
	}
	if g.Provider == GPUStatic && len(g.Devices) == 0 && doc.ok("gpu.provider") {
		doc.errorf("gpu.provider", `"static" needs the GPUs listed as [[gpu.devices]] entries (index, uuid, name, memory, numa_node)`)
	}
	seenIdx, seenUUID := map[int]bool{}, map[string]bool{}
	for i, d := range g.Devices {
		key := fmt.Sprintf("gpu.devices[%d]", i)
		switch {
		case d.UUID == "":
			doc.errorf(key, "uuid is missing (as nvidia-smi -L shows it, \"GPU-...\")")
		case !gpuUUIDLoose.MatchString(d.UUID):
			doc.errorf(key+".uuid", "%q is not a GPU UUID (such as \"GPU-8b7c1e4a-...\")", d.UUID)
		case seenUUID[d.UUID]:
			doc.errorf(key+".uuid", "%q is listed twice", d.UUID)
		}
		if seenIdx[d.Index] {
			doc.errorf(key+".index", "%d is listed twice", d.Index)
		}
		if d.Index < 0 {
			doc.errorf(key+".index", "must not be negative")
		}
		if d.Memory <= 0 && doc.ok(key+".memory") {
			doc.errorf(key+".memory", "is missing or not positive (the GPU's memory, such as \"80GiB\")")
		}
		if d.CPUs != "" {
			if err := checkIDList(d.CPUs, "CPU", maxCPUIDs); err != nil {
				doc.errorAt(key+".cpus", key+".cpus", err)
			}
		}
		seenIdx[d.Index], seenUUID[d.UUID] = true, true
	}
	for _, k := range []string{"gpu.health.ignore_xids", "gpu.health.fatal_xids"} {
		list := g.Health.IgnoreXIDs
		if strings.HasSuffix(k, "fatal_xids") {
			list = g.Health.FatalXIDs
		}
		for _, x := range list {
			if x <= 0 || x > 1000 {
				doc.errorf(k, "%d is not an XID (1 to 1000)", x)
			}
		}
	}
	if doc.ok("gpu.health.poll_interval") && g.Health.PollInterval < time.Second {
		doc.errorf("gpu.health.poll_interval", "%s is too short (at least 1s; NVML calls are not free)", g.Health.PollInterval)
	}

	c := &a.Consul
	if c.Enabled && doc.ok("consul.address") && c.Address == "" {
		doc.errorf("consul.address", "must not be empty (the local Consul agent, such as \"127.0.0.1:8500\")")
	}
	if doc.ok("consul.kv_prefix") && c.KVPrefix != "" && (strings.HasPrefix(c.KVPrefix, "/") || !strings.HasSuffix(c.KVPrefix, "/")) {
		doc.errorf("consul.kv_prefix", "%q must not start with \"/\" and must end with \"/\" (such as \"glmd/\")", c.KVPrefix)
	}
	if (c.CertFile == "") != (c.KeyFile == "") && doc.ok("consul.cert_file") && doc.ok("consul.key_file") {
		doc.errorf("consul.cert_file", "cert_file and key_file go together (a client certificate needs its key)")
	}
	if doc.ok("consul.check_ttl") && c.CheckTTL != 0 && c.CheckTTL < time.Second {
		doc.errorf("consul.check_ttl", "%s is too short (at least 1s)", c.CheckTTL)
	}
	if doc.ok("consul.lock_delay") && (c.LockDelay < 0 || c.LockDelay > time.Minute) {
		doc.errorf("consul.lock_delay", "%s is out of range (0 to 60s, Consul's limit)", c.LockDelay)
	}
	if doc.ok("cron.timezone") && a.Cron.Timezone != "" {
		if _, err := LoadZone(a.Cron.Timezone); err != nil {
			doc.errorAt("cron.timezone", "cron.timezone", err)
		}
	}
}
