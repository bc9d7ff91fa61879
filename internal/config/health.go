package config

import (
	"fmt"
	"maps"
	"net"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Defaults of a [[health]] check, shared with docs/tasks.md. They are
// Kubernetes' probe defaults (period 10s, timeout 1s, 3 failures in a row,
// so a hung worker is noticed after about 30 s), and a startup window long
// enough for a large model to load its weights.
const (
	DefaultHealthInterval         = 10 * time.Second
	DefaultHealthTimeout          = time.Second // or the interval, when that is shorter
	DefaultHealthFailureThreshold = 3
	DefaultHealthSuccessThreshold = 1
	DefaultHealthStartPeriod      = 10 * time.Minute
	DefaultHealthMethod           = "GET"
)

// defaultHealthStatus is what an HTTP check expects by default: 2xx and
// 3xx, as Kubernetes' httpGet.
var defaultHealthStatus = StatusRange{Min: 200, Max: 399}

// samplePort stands in for a port glmd picks when an instance starts
// (port = 0), so that a check's address renders as one during validation.
const samplePort = 49152

// healthKeys is the schema of one [[health]] entry.
var healthKeys = &keySet{
	array: true,
	keys: map[string]*keySet{
		"role": nil, "type": nil,
		"url": nil, "method": nil, "headers": {free: true}, "body": nil, "status": nil, "body_contains": nil,
		"address": nil, "service": nil, "command": nil,
		"interval": nil, "timeout": nil, "initial_delay": nil,
		"failure_threshold": nil, "success_threshold": nil, "start_period": nil,
	},
	alias: map[string]string{
		// Kubernetes
		"path": "url", "httpheaders": "headers", "period": "interval", "periodseconds": "interval",
		"timeoutseconds": "timeout", "initialdelayseconds": "initial_delay",
		// Nomad
		"protocol": "type", "args": "command", "grpcservice": "service",
		"failuresbeforecritical": "failure_threshold", "successbeforepassing": "success_threshold",
		// Docker HEALTHCHECK
		"retries": "failure_threshold", "cmd": "command",
		// HTTP checkers
		"expectedstatus": "status", "statuscode": "status", "statuscodes": "status", "expect": "status",
		"contains": "body_contains", "expectbody": "body_contains", "data": "body", "payload": "body",
		"addr": "address", "delay": "initial_delay",
	},
}

// probeKeys are the keys that belong to some probe types only.
var probeKeys = map[string][]ProbeType{
	"url": {ProbeHTTP}, "method": {ProbeHTTP}, "headers": {ProbeHTTP}, "body": {ProbeHTTP},
	"status": {ProbeHTTP}, "body_contains": {ProbeHTTP},
	"address": {ProbeTCP, ProbeGRPC}, "service": {ProbeGRPC}, "command": {ProbeExec},
}

var (
	roleNames = []string{"startup", "liveness", "readiness"}
	typeNames = []string{"http", "tcp", "exec", "grpc"}
	// typeAliases are other tools' names for a probe type.
	typeAliases = map[string]string{
		"script": "exec", "command": "exec", "cmd": "exec", "https": "http", "httpget": "http",
		"tcpsocket": "tcp", "grpchealth": "grpc",
	}
	// tokenRE is an HTTP token (RFC 9110, section 5.6.2): methods and header names.
	tokenRE = regexp.MustCompile("^[!#$%&'*+.^_`|~0-9A-Za-z-]+$")
)

// healthPos is posOf for [[health]] entries.
func (d *document) healthPos(keys ...string) string {
	return d.posOf(append(keys, "health")...)
}

// decodeHealth reads the [[health]] entries into t.Health, one HealthCheck
// per entry, so that entry i is Health[i] also when it is bad.
func (f *taskFile) decodeHealth() {
	v, ok := f.lookup("health")
	if !ok {
		return
	}
	var entries []any
	switch v := v.(type) {
	case []map[string]any: // [[health]]
		for _, e := range v {
			entries = append(entries, e)
		}
	case []any: // health = [{ role = ... }]
		entries = v
	case map[string]any:
		f.errorf("health", "must be an array of tables, not a table (write [[health]], with two brackets, before each check's keys)")
		return
	default:
		f.wrongType("health", v, "an array of tables ([[health]] before each check's keys)")
		return
	}
	f.given["health"] = true
	checks := make([]HealthCheck, len(entries))
	for i, e := range entries {
		f.decodeCheck(fmt.Sprintf("health[%d]", i), e, &checks[i])
	}
	f.t.Health = checks
}

func (f *taskFile) decodeCheck(entry string, e any, c *HealthCheck) {
	m, ok := e.(map[string]any)
	if !ok {
		f.errorAt(f.healthPos(entry), entry, fmt.Errorf("must be a table with the check's keys, not %s", tomlType(e)))
		return
	}
	f.given[entry] = true
	key := func(name string) string { return entry + "." + name }
	pos := func(name string) string { return f.healthPos(key(name), entry) }
	for _, name := range sortedKeys(m) {
		if _, known := healthKeys.keys[name]; !known {
			k := joinKey(entry, name)
			f.errorAt(f.healthPos(k, entry), "", &unknownKeyError{key: k, hint: keyHint(taskKeys, healthKeys, entry, name)})
		}
	}

	// Role and type first: they decide which other keys belong.
	if v, ok := m["role"]; ok {
		if s, ok := f.strValue(pos("role"), key("role"), v); ok {
			switch r := HealthRole(s); r {
			case RoleStartup, RoleLiveness, RoleReadiness:
				c.Role = r
			default:
				f.errorAt(pos("role"), key("role"), fmt.Errorf(`%q is not a check role (%suse "startup", "liveness" or "readiness")`, s, didYouMean(s, roleNames, nil)))
			}
		}
	}
	if v, ok := m["type"]; ok {
		if s, ok := f.strValue(pos("type"), key("type"), v); ok {
			switch t := ProbeType(s); t {
			case ProbeHTTP, ProbeTCP, ProbeExec, ProbeGRPC:
				c.Type = t
			default:
				f.errorAt(pos("type"), key("type"), fmt.Errorf(`%q is not a check type (%suse "http", "tcp", "exec" or "grpc")`, s, didYouMean(s, typeNames, typeAliases)))
			}
		}
	}

	// get returns the value of name when it belongs to a check of this
	// type and role; a key that does not is reported and left out.
	get := func(name string) (any, bool) {
		v, ok := m[name]
		if !ok {
			return nil, false
		}
		if types := probeKeys[name]; types != nil && c.Type != "" && !slices.Contains(types, c.Type) {
			f.errorAt(pos(name), key(name), fmt.Errorf("only for %s (this check has type = %q%s)", typeList(types), c.Type, f.entryTrap(name)))
			return nil, false
		}
		if name == "start_period" && c.Role != "" && c.Role != RoleStartup {
			f.errorAt(pos(name), key(name), fmt.Errorf(`only for role = "startup" (this check has role = %q: it starts once the startup check, if any, has passed)`, c.Role))
			return nil, false
		}
		return v, true
	}
	str := func(name string, dst *string) {
		if v, ok := get(name); ok {
			if s, ok := f.strValue(pos(name), key(name), v); ok {
				*dst = s
			}
		}
	}
	dur := func(name string, dst *time.Duration) {
		if v, ok := get(name); ok {
			if d, ok := f.durationValue(pos(name), key(name), v); ok {
				*dst = d
			}
		}
	}
	integer := func(name string, dst *int) {
		if v, ok := get(name); ok {
			if n, ok := f.intValue(pos(name), key(name), v); ok {
				*dst = n
			}
		}
	}

	str("url", &c.URL)
	str("method", &c.Method)
	if v, ok := get("headers"); ok {
		f.decodeHeaders(entry, v, c)
	}
	str("body", &c.Body)
	if v, ok := get("status"); ok {
		if r, err := parseStatusRange(v); err != nil {
			f.errorAt(pos("status"), key("status"), err)
		} else {
			c.Status = r
			f.given[key("status")] = true
		}
	}
	str("body_contains", &c.BodyContains)
	str("address", &c.Address)
	str("service", &c.Service)
	if v, ok := get("command"); ok {
		switch v := v.(type) {
		case []any:
			if list, ok := f.strElems(pos("command"), key("command"), v); ok {
				c.Command = list
			}
		case string:
			f.errorAt(pos("command"), key("command"), fmt.Errorf(`must be an array of strings, not a string (try %s; for a shell, ["/bin/sh", "-c", %q])`, tomlArray(strings.Fields(v)), v))
		default:
			f.errorAt(pos("command"), key("command"), fmt.Errorf("must be an array of strings, not %s", tomlType(v)))
		}
	}
	dur("interval", &c.Interval)
	dur("timeout", &c.Timeout)
	dur("initial_delay", &c.InitialDelay)
	integer("failure_threshold", &c.FailureThreshold)
	integer("success_threshold", &c.SuccessThreshold)
	dur("start_period", &c.StartPeriod)
}

// entryTrap explains a key of the task written after [[health]], where
// TOML puts it into the check.
func (f *taskFile) entryTrap(name string) string {
	if _, taskKey := taskKeys.keys[name]; !taskKey {
		return ""
	}
	if _, atTop := f.raw[name]; atTop {
		return ""
	}
	return "; if it is the task's " + name + ", move it above the first [[health]]: the keys after [[health]] belong to its entry"
}

func (f *taskFile) decodeHeaders(entry string, v any, c *HealthCheck) {
	k := entry + ".headers"
	m, ok := v.(map[string]any)
	if !ok {
		f.errorAt(f.healthPos(k, entry), k, fmt.Errorf(`must be a table of header names and values, such as headers = { Authorization = "Bearer x" }, not %s`, tomlType(v)))
		return
	}
	f.given[k] = true
	c.Headers = map[string]string{}
	for _, name := range sortedKeys(m) {
		hk := joinKey(k, name)
		if s, ok := f.strValue(f.healthPos(hk, k, entry), hk, m[name]); ok {
			c.Headers[name] = s
		}
	}
}

// parseStatusRange reads status: an integer code, or a string with a code
// ("200") or an inclusive range ("200-299").
func parseStatusRange(v any) (StatusRange, error) {
	codeErr := func(n int) error { return fmt.Errorf("%d is not an HTTP status code (100 to 599)", n) }
	switch v := v.(type) {
	case int64:
		if v < 100 || v > 599 {
			return StatusRange{}, codeErr(int(v))
		}
		return StatusRange{Min: int(v), Max: int(v)}, nil
	case string:
		lo, hi, isRange := strings.Cut(v, "-")
		first, err1 := parseID(lo)
		last, err2 := first, error(nil)
		if isRange {
			last, err2 = parseID(hi)
		}
		if err1 != nil || err2 != nil {
			if len(v) == 3 && v[0] >= '1' && v[0] <= '5' && strings.EqualFold(v[1:], "xx") {
				return StatusRange{}, fmt.Errorf("%q is not a status range (try \"%c00-%c99\")", v, v[0], v[0])
			}
			if compact := strings.Join(strings.Fields(v), ""); compact != v {
				if _, err := parseStatusRange(compact); err == nil {
					return StatusRange{}, fmt.Errorf("%q is not a status range (no spaces: try %q)", v, compact)
				}
			}
			return StatusRange{}, fmt.Errorf(`%q is not a status code or range (such as "200" or "200-299")`, v)
		}
		for _, n := range []int{first, last} {
			if n < 100 || n > 599 {
				return StatusRange{}, fmt.Errorf("%q: %w", v, codeErr(n))
			}
		}
		if last < first {
			return StatusRange{}, fmt.Errorf("%q runs backwards (try \"%d-%d\")", v, last, first)
		}
		return StatusRange{Min: first, Max: last}, nil
	}
	return StatusRange{}, fmt.Errorf(`must be a status code or range such as "200-399", not %s`, tomlType(v))
}

// defaultHealth fills the keys each check did not set.
func (f *taskFile) defaultHealth() {
	for i := range f.t.Health {
		c := &f.t.Health[i]
		entry := fmt.Sprintf("health[%d]", i)
		set := func(name string) bool { return f.given[entry+"."+name] }
		if !set("interval") {
			c.Interval = DefaultHealthInterval
		}
		if !set("timeout") {
			// A short interval takes the timeout down with it, rather than
			// failing on a value the file never wrote.
			c.Timeout = DefaultHealthTimeout
			if c.Interval > 0 && c.Interval < c.Timeout {
				c.Timeout = c.Interval
			}
		}
		if !set("failure_threshold") {
			c.FailureThreshold = DefaultHealthFailureThreshold
		}
		if !set("success_threshold") {
			c.SuccessThreshold = DefaultHealthSuccessThreshold
		}
		if c.Role == RoleStartup && !set("start_period") {
			c.StartPeriod = DefaultHealthStartPeriod
		}
		if c.Type == ProbeHTTP {
			if !set("method") {
				c.Method = DefaultHealthMethod
			}
			if !set("status") {
				c.Status = defaultHealthStatus
			}
		}
		if len(c.Headers) == 0 {
			c.Headers = nil
		}
	}
	if len(f.t.Health) == 0 {
		f.t.Health = nil
	}
}

// validateHealth checks each check's ranges, its required keys and that
// no two checks share a role. Templates are checked with the others.
func (f *taskFile) validateHealth() {
	first := map[HealthRole]int{}
	for i := range f.t.Health {
		c := &f.t.Health[i]
		entry := fmt.Sprintf("health[%d]", i)
		if !f.given[entry] {
			continue // not a table: reported
		}
		key := func(name string) string { return entry + "." + name }
		pos := func(name string) string { return f.healthPos(key(name), entry) }
		given := func(name string) bool { return f.given[key(name)] }
		missing := func(name string) bool { return !given(name) && f.ok(key(name)) }
		fail := func(name, format string, args ...any) {
			f.errorAt(pos(name), key(name), fmt.Errorf(format, args...))
		}
		failEntry := func(format string, args ...any) {
			f.errorAt(f.healthPos(entry), entry, fmt.Errorf(format, args...))
		}

		if missing("role") {
			failEntry(`role missing: what the check decides, role = "startup", "liveness" or "readiness"`)
		}
		if c.Role != "" {
			if j, dup := first[c.Role]; dup {
				fail("role", "health[%d] is the %s check already (one check per role)", j, c.Role)
			} else {
				first[c.Role] = i
			}
		}
		if missing("type") {
			failEntry(`type missing: how to probe, type = "http", "tcp", "exec" or "grpc"`)
		}
		switch c.Type {
		case ProbeHTTP:
			if missing("url") {
				failEntry(`url missing: what to request, such as url = "http://127.0.0.1:{{.Port}}/health"`)
			}
			f.validateHTTPCheck(entry, c)
		case ProbeTCP, ProbeGRPC:
			if missing("address") {
				failEntry(`address missing: where to connect, such as address = "127.0.0.1:{{.Port}}"`)
			}
		case ProbeExec:
			switch {
			case missing("command"):
				failEntry(`command missing: the program to run and its arguments, such as command = ["/opt/bin/check", "--port", "{{.Port}}"]`)
			case !given("command"):
			case len(c.Command) == 0:
				fail("command", "must not be empty")
			case c.Command[0] == "":
				fail("command", "the program (first element) must not be empty")
			}
		}

		if given("interval") && c.Interval <= 0 {
			fail("interval", "must be positive (the default is %q)", shortDuration(DefaultHealthInterval))
		}
		if given("timeout") && c.Timeout <= 0 {
			fail("timeout", "must be positive (the default is %q)", shortDuration(DefaultHealthTimeout))
		}
		if given("initial_delay") && c.InitialDelay < 0 {
			fail("initial_delay", "must not be negative")
		}
		if given("start_period") && c.StartPeriod < 0 {
			fail("start_period", "must not be negative (0 = failures count from the first probe)")
		}
		if given("timeout") && f.ok(key("interval")) && c.Timeout > 0 && c.Interval > 0 && c.Timeout > c.Interval {
			interval := shortDuration(c.Interval)
			if !given("interval") {
				interval += " (the default)"
			}
			fail("timeout", "%s is longer than interval %s: probes of one check never overlap, so each must end before the next is due (raise interval or lower timeout)",
				shortDuration(c.Timeout), interval)
		}
		if given("failure_threshold") && c.FailureThreshold < 1 {
			fail("failure_threshold", "must be at least 1 (the default is %d)", DefaultHealthFailureThreshold)
		}
		if given("success_threshold") {
			switch {
			case c.SuccessThreshold < 1:
				fail("success_threshold", "must be at least 1 (the default is %d)", DefaultHealthSuccessThreshold)
			case c.SuccessThreshold > 1 && (c.Role == RoleStartup || c.Role == RoleLiveness):
				fail("success_threshold", "must be 1 for a %s check, as in Kubernetes: startup ends at its first success and liveness acts on failures only; readiness may wait for more", c.Role)
			}
		}
	}
}

func (f *taskFile) validateHTTPCheck(entry string, c *HealthCheck) {
	key := func(name string) string { return entry + "." + name }
	given := func(name string) bool { return f.given[key(name)] }
	fail := func(k, format string, args ...any) {
		f.errorAt(f.healthPos(k, entry), k, fmt.Errorf(format, args...))
	}
	if given("method") {
		switch m := c.Method; {
		case m == "":
			fail(key("method"), `must not be empty (the default is "GET")`)
		case !tokenRE.MatchString(m):
			fail(key("method"), "%q is not an HTTP method (such as \"GET\" or \"POST\")", m)
		case m != strings.ToUpper(m):
			fail(key("method"), "%q: methods are upper case (try %q)", m, strings.ToUpper(m))
		}
	}
	if given("body") && c.Body != "" && !given("method") && f.ok(key("method")) {
		// GET is the default; a body on it is ignored or refused by most
		// servers, and the check would fail for a reason hard to see.
		fail(key("body"), `is sent with the default method GET, which servers ignore or refuse for a body (set method = "POST")`)
	}
	if given("body_contains") {
		switch {
		case c.BodyContains == "":
			fail(key("body_contains"), "must not be empty (leave it out not to check the body)")
		case c.Method == "HEAD":
			fail(key("body_contains"), "cannot match: the answer to a HEAD request has no body")
		}
	}
	seen := map[string]string{}
	for _, name := range sortedKeys(c.Headers) {
		hk := joinKey(key("headers"), name)
		lower := strings.ToLower(name)
		switch {
		case !tokenRE.MatchString(name):
			fail(hk, "%q is not a header name (letters, digits and !#$%%&'*+-.^_`|~)", name)
		case lower == "content-length" || lower == "transfer-encoding":
			fail(hk, "is set by glmd from body")
		case seen[lower] != "":
			fail(hk, "is the same header as %q (header names are not case-sensitive)", seen[lower])
		}
		if seen[lower] == "" {
			seen[lower] = name
		}
	}
}

func typeList(types []ProbeType) string {
	quoted := make([]string, len(types))
	for i, t := range types {
		quoted[i] = strconv.Quote(string(t))
	}
	return "type = " + strings.Join(quoted, " or ")
}

// didYouMean returns `did you mean "x"? ` for a value near one of names
// or known to other tools by another name, else "".
func didYouMean(s string, names []string, aliases map[string]string) string {
	best := aliases[squash(s)]
	if best == "" {
		best = closest(s, names)
	}
	if best == "" {
		return ""
	}
	return fmt.Sprintf("did you mean %q? ", best)
}

// validateHealthTemplates checks the templated values of each check and
// what they render to with sample values.
func (f *taskFile) validateHealthTemplates(vars Vars) {
	// A port glmd picks at start renders as some port here, so that an
	// address with {{.Port}} can be checked as an address.
	if vars.Port == 0 {
		vars.Port = samplePort
	}
	vars.Ports = maps.Clone(vars.Ports)
	for name, p := range vars.Ports {
		if p == 0 {
			vars.Ports[name] = samplePort
		}
	}
	for i := range f.t.Health {
		c := &f.t.Health[i]
		entry := fmt.Sprintf("health[%d]", i)
		if !f.given[entry] {
			continue
		}
		key := func(name string) string { return entry + "." + name }
		check := func(posKey, k, text string) (string, bool) {
			if !f.given[posKey] {
				return "", false
			}
			return f.renderCheck(vars, f.healthPos(posKey, entry), k, text, true)
		}
		if out, ok := check(key("url"), key("url"), c.URL); ok {
			if err := checkProbeURL(c.URL, out); err != nil {
				f.errorAt(f.healthPos(key("url"), entry), key("url"), err)
			}
		}
		for _, name := range sortedKeys(c.Headers) {
			hk := joinKey(key("headers"), name)
			pos := f.healthPos(hk, key("headers"))
			if out, ok := check(hk, hk, c.Headers[name]); ok && hasControl(out) {
				f.errorAt(pos, hk, errHeaderControl)
			}
		}
		check(key("body"), key("body"), c.Body)
		if out, ok := check(key("address"), key("address"), c.Address); ok {
			if err := checkAddress(c.Address, out); err != nil {
				f.errorAt(f.healthPos(key("address"), entry), key("address"), err)
			}
		}
		for j, arg := range c.Command {
			k := fmt.Sprintf("%s[%d]", key("command"), j)
			if out, ok := check(key("command"), k, arg); ok && j == 0 && out == "" && arg != "" {
				f.errorAt(f.healthPos(key("command"), entry), k, fmt.Errorf("the program renders to an empty string"))
			}
		}
	}
}

var errHeaderControl = fmt.Errorf("contains a line break or another control character, which a header value cannot hold")

// hasControl says whether s holds a byte HTTP forbids in a header value.
func hasControl(s string) bool {
	return strings.ContainsFunc(s, func(r rune) bool { return r < ' ' && r != '\t' || r == 0x7f })
}

// checkProbeURL checks what url (as written) rendered to.
func checkProbeURL(written, rendered string) error {
	u, err := url.Parse(rendered)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		if !strings.Contains(written, "://") {
			return fmt.Errorf("%q is not an http:// or https:// URL (try %q)", written, "http://"+written)
		}
		return fmt.Errorf("%q is not an http:// or https:// URL", written)
	}
	if u.Hostname() == "" {
		return fmt.Errorf("%q has no host", written)
	}
	if p := u.Port(); p != "" {
		if n, err := strconv.Atoi(p); err != nil || n < 1 || n > maxPort {
			return fmt.Errorf("%q: port %s is out of range (1 to %d)", written, p, maxPort)
		}
	}
	return nil
}

// checkAddress checks what address (as written) rendered to: host:port
// with a numeric port.
func checkAddress(written, rendered string) error {
	if _, rest, isURL := strings.Cut(written, "://"); isURL {
		hostPort, _, _ := strings.Cut(rest, "/")
		return fmt.Errorf("%q is a URL, not host:port (try %q)", written, hostPort)
	}
	host, port, err := net.SplitHostPort(rendered)
	if err != nil {
		if !strings.Contains(rendered, ":") {
			return fmt.Errorf("%q has no port (host:port, such as %q)", written, written+":8000")
		}
		return fmt.Errorf("%q is not host:port (such as \"127.0.0.1:8000\"; an IPv6 address in brackets, \"[::1]:8000\")", written)
	}
	if host == "" {
		return fmt.Errorf("%q has no host (try %q)", written, "127.0.0.1"+written)
	}
	if n, err := parseID(port); err != nil || n < 1 || n > maxPort {
		return fmt.Errorf("%q: port %q is not a number from 1 to %d", written, port, maxPort)
	}
	return nil
}

// renderHealth renders the templated values of check i for one instance.
// The result shares no map or slice with c.
func renderHealth(c HealthCheck, i int, v Vars) (HealthCheck, error) {
	out := c
	var err error
	field := func(name, text string) string {
		if err != nil {
			return ""
		}
		k := fmt.Sprintf("health[%d].%s", i, name)
		s, rerr := render(k, text, v)
		if rerr != nil {
			err = fmt.Errorf("%s: %w", k, rerr)
		}
		return s
	}
	out.URL = field("url", c.URL)
	out.Body = field("body", c.Body)
	out.Address = field("address", c.Address)
	out.Headers = nil
	if c.Headers != nil {
		out.Headers = make(map[string]string, len(c.Headers))
		for _, name := range sortedKeys(c.Headers) {
			out.Headers[name] = field(joinKey("headers", name), c.Headers[name])
			if err == nil && hasControl(out.Headers[name]) {
				err = fmt.Errorf("health[%d].%s: %w", i, joinKey("headers", name), errHeaderControl)
			}
		}
	}
	out.Command = nil
	if c.Command != nil {
		out.Command = make([]string, len(c.Command))
		for j, arg := range c.Command {
			out.Command[j] = field(fmt.Sprintf("command[%d]", j), arg)
		}
	}
	if err != nil {
		return HealthCheck{}, err
	}
	return out, nil
}
