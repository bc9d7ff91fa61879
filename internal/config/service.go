package config

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"

	"github.com/BurntSushi/toml"
)

// Service is the task file's [service] table: how each instance appears in
// Consul. Name, Port, the Tags and the Meta values are templates. A task
// without [service] is not registered (the node's glmd service still is).
type Service struct {
	Name string   // default: the task's name
	Port string   // template rendering to a port; default "{{.Port}}"
	Tags []string // templates
	Meta map[string]string
}

// ServiceInstance is a Service rendered for one instance.
type ServiceInstance struct {
	Name string
	Port int // 0 = none
	Tags []string
	Meta map[string]string
}

// serviceNameRE is what Consul's DNS interface can serve: RFC 1123 labels.
var serviceNameRE = regexp.MustCompile(`^[A-Za-z0-9]([A-Za-z0-9-]{0,61}[A-Za-z0-9])?$`)

// metaKeyRE is Consul's rule for service meta keys.
var metaKeyRE = regexp.MustCompile(`^[A-Za-z0-9_-]{1,128}$`)

var serviceKeys = &keySet{
	keys: map[string]*keySet{"name": nil, "port": nil, "tags": nil, "meta": {free: true}},
}

func (f *taskFile) decodeService() {
	if _, ok := f.table("service"); !ok {
		return
	}
	s := &Service{}
	if v, ok := f.str("service", "name"); ok {
		s.Name = v
	}
	if v, ok := f.lookup("service", "port"); ok {
		switch v := v.(type) {
		case int64:
			s.Port = strconv.FormatInt(v, 10)
			f.given["service.port"] = true
		case string:
			s.Port = v
			f.given["service.port"] = true
		default:
			f.wrongType("service.port", v, `a port number or a template such as "{{.Ports.http}}"`)
		}
	}
	if list, ok := f.strs("service", "tags"); ok {
		s.Tags = list
	}
	if m, ok := f.strTable(`meta = { model = "glm-4" }`, "service", "meta"); ok {
		s.Meta = m
	}
	f.t.Service = s
}

func (f *taskFile) defaultService() {
	s := f.t.Service
	if s == nil {
		return
	}
	if !f.given["service.name"] {
		s.Name = f.t.Name
	}
	if !f.given["service.port"] && f.t.Port != NoPort {
		s.Port = "{{.Port}}"
	}
}

func (f *taskFile) validateService(vars Vars) {
	s := f.t.Service
	if s == nil {
		return
	}
	if f.ok("service.name") {
		if out, ok := f.renderCheck(vars, "service.name", "service.name", s.Name, true); ok && !serviceNameRE.MatchString(out) {
			f.errorf("service.name", "%q is not a valid service name (letters, digits and '-', at most 63, as DNS names)", out)
		}
	}
	if s.Port != "" && f.ok("service.port") {
		if out, ok := f.renderCheck(vars, "service.port", "service.port", s.Port, true); ok {
			// A port glmd picks (port = 0) renders as 0 here.
			picked := out == "0" && strings.Contains(s.Port, "{{")
			if n, err := strconv.Atoi(out); !picked && (err != nil || n < 1 || n > maxPort) {
				f.errorf("service.port", "renders to %q, which is not a port (1 to %d)", out, maxPort)
			}
		}
	}
	for i, tag := range s.Tags {
		f.renderCheck(vars, "service.tags", fmt.Sprintf("service.tags[%d]", i), tag, true)
	}
	for _, k := range sortedKeys(s.Meta) {
		key := toml.Key{"service", "meta", k}.String()
		if !metaKeyRE.MatchString(k) {
			f.errorf(key, "%q is not a valid meta key for Consul (letters, digits, '_' and '-', at most 128)", k)
			continue
		}
		f.renderCheck(vars, key, key, s.Meta[k], true)
	}
}

// renderService renders s for one instance.
func renderService(s *Service, v Vars) (*ServiceInstance, error) {
	out := &ServiceInstance{Meta: map[string]string{}}
	var err error
	if out.Name, err = render("service.name", s.Name, v); err != nil {
		return nil, fmt.Errorf("service.name: %w", err)
	}
	if s.Port != "" {
		p, err := render("service.port", s.Port, v)
		if err != nil {
			return nil, fmt.Errorf("service.port: %w", err)
		}
		if out.Port, err = strconv.Atoi(p); err != nil {
			return nil, fmt.Errorf("service.port: %q is not a port", p)
		}
	}
	for i, tag := range s.Tags {
		t, err := render(fmt.Sprintf("service.tags[%d]", i), tag, v)
		if err != nil {
			return nil, fmt.Errorf("service.tags[%d]: %w", i, err)
		}
		out.Tags = append(out.Tags, t)
	}
	for k, tmpl := range s.Meta {
		val, err := render("service.meta."+k, tmpl, v)
		if err != nil {
			return nil, fmt.Errorf("service.meta.%s: %w", k, err)
		}
		out.Meta[k] = val
	}
	return out, nil
}
