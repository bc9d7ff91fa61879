// Package health probes task instances (http, tcp, exec, grpc) and decides,
// with Kubernetes' rules, whether an instance is ready and whether it must be
// restarted.
//
// The decisions live in Tracker, a pure state machine that takes the time of
// each probe result as an argument; the timing (initial delay, interval,
// timeout, start period) lives in Monitor, which implements
// supervisor.Health.
package health

import (
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// Check roles, as in Kubernetes. Startup gates the other two and gives a slow
// starter its start period; liveness failures restart the instance;
// readiness says whether it may get work.
const (
	RoleStartup   = "startup"
	RoleLiveness  = "liveness"
	RoleReadiness = "readiness"
)

// Probe types.
const (
	TypeHTTP = "http"
	TypeTCP  = "tcp"
	TypeExec = "exec"
	TypeGRPC = "grpc"
)

// Default expected HTTP status range, as Kubernetes: redirects pass, since
// the probe does not follow them.
const (
	DefaultStatusMin = 200
	DefaultStatusMax = 399
)

// Check is one [[health]] entry of a task, rendered for one instance
// (templates already applied). The agent fills it from the task file; zero
// durations and thresholds are errors here, defaults are the task file's
// business.
type Check struct {
	Role string // RoleStartup, RoleLiveness or RoleReadiness
	Type string // TypeHTTP, TypeTCP, TypeExec or TypeGRPC
	// Interval is the pause between the end of one probe and the start of
	// the next: probes of one check never overlap, whatever the timeout.
	// Start times are rounded up to the next 20 ms, so that one wake-up of
	// the agent serves every probe due then (see BenchmarkFleet).
	Interval time.Duration
	// Timeout cuts a probe; a probe cut at its timeout is a failure with
	// outcome "timeout".
	Timeout time.Duration
	// InitialDelay counts from the process start to the first probe. For
	// liveness and readiness the first probe also waits for the startup
	// check to pass.
	InitialDelay time.Duration
	// FailureThreshold is how many failures in a row make a liveness check
	// restart the instance and a readiness check take it out of service,
	// and, once StartPeriod is over, a startup check restart it.
	FailureThreshold int
	// SuccessThreshold is how many successes in a row make a readiness
	// check put the instance in service; it must be 1 for startup and
	// liveness, as in Kubernetes.
	SuccessThreshold int
	// StartPeriod (startup only) is the time from the process start during
	// which the startup check's failures do not count.
	StartPeriod time.Duration

	// The probe: the one matching Type is set.
	HTTP *HTTPCheck
	TCP  *TCPCheck
	Exec *ExecCheck
	GRPC *GRPCCheck
}

// HTTPCheck is an HTTP request whose status (and optionally body) decides.
// Redirects are not followed: a 3xx answer is judged by its status.
type HTTPCheck struct {
	Method  string            // "" = GET
	URL     string            // http:// or https:// (the certificate is not verified, as kubelet)
	Headers map[string]string // "Host" sets the request's host
	Body    string            // "" = no body; e.g. a one-token completion request
	// StatusMin and StatusMax are the inclusive range of passing status
	// codes; 0 means DefaultStatusMin / DefaultStatusMax.
	StatusMin, StatusMax int
	// BodyContains, when set, must occur in the first MaxBody bytes of the
	// response body.
	BodyContains string
}

// TCPCheck passes when a TCP connection to Address opens within the timeout.
type TCPCheck struct {
	Address string // host:port
}

// ExecCheck runs a command through Deps.Exec; exit code 0 passes.
type ExecCheck struct {
	Argv []string // run as the task's user, without a shell
}

// GRPCCheck calls grpc.health.v1.Health/Check over plaintext HTTP/2 (h2c);
// the answer SERVING passes.
type GRPCCheck struct {
	Address string // host:port
	Service string // "" asks about the whole server
}

// Validate checks a task instance's health checks: at most one per role, a
// known role and type with its probe set, positive interval and timeout,
// thresholds of at least 1 (success_threshold exactly 1 for startup and
// liveness), and start_period on startup checks only. It reports every
// problem, joined, with the task file's key names.
func Validate(checks []Check) error {
	var errs []error
	seen := map[string]bool{}
	for i := range checks {
		c := &checks[i]
		name := c.Role
		if name == "" {
			name = fmt.Sprintf("health[%d]", i)
		}
		bad := func(format string, args ...any) {
			errs = append(errs, fmt.Errorf("health: %s check: "+format, append([]any{name}, args...)...))
		}
		switch c.Role {
		case RoleStartup, RoleLiveness, RoleReadiness:
			if seen[c.Role] {
				bad("more than one; a task has at most one check per role")
			}
			seen[c.Role] = true
		default:
			bad("role %q unknown: use startup, liveness or readiness", c.Role)
		}
		if c.Interval <= 0 {
			bad("interval must be positive, got %s", c.Interval)
		}
		if c.Timeout <= 0 {
			bad("timeout must be positive, got %s", c.Timeout)
		}
		if c.InitialDelay < 0 {
			bad("initial_delay must not be negative, got %s", c.InitialDelay)
		}
		if c.FailureThreshold < 1 {
			bad("failure_threshold must be at least 1, got %d", c.FailureThreshold)
		}
		if c.SuccessThreshold < 1 {
			bad("success_threshold must be at least 1, got %d", c.SuccessThreshold)
		} else if c.SuccessThreshold != 1 && (c.Role == RoleStartup || c.Role == RoleLiveness) {
			bad("success_threshold must be 1 for %s checks, got %d", c.Role, c.SuccessThreshold)
		}
		switch {
		case c.Role == RoleStartup && c.StartPeriod < 0:
			bad("start_period must not be negative, got %s", c.StartPeriod)
		case c.Role != RoleStartup && c.StartPeriod != 0:
			bad("start_period applies to startup checks only")
		}
		if err := validateProbe(c); err != nil {
			bad("%v", err)
		}
	}
	return errors.Join(errs...)
}

// validateProbe checks that the probe matching c.Type is set and well formed.
func validateProbe(c *Check) error {
	switch c.Type {
	case TypeHTTP:
		if c.HTTP == nil {
			return errors.New("type http without its request")
		}
		return validateHTTP(c.HTTP)
	case TypeTCP:
		if c.TCP == nil {
			return errors.New("type tcp without its address")
		}
		return validateAddress(c.TCP.Address)
	case TypeExec:
		if c.Exec == nil || len(c.Exec.Argv) == 0 || c.Exec.Argv[0] == "" {
			return errors.New("type exec needs a command")
		}
	case TypeGRPC:
		if c.GRPC == nil {
			return errors.New("type grpc without its address")
		}
		return validateAddress(c.GRPC.Address)
	default:
		return fmt.Errorf("type %q unknown: use http, tcp, exec or grpc", c.Type)
	}
	return nil
}

func validateHTTP(h *HTTPCheck) error {
	if h.Method != "" && !isToken(h.Method) {
		return fmt.Errorf("method %q is not an HTTP method", h.Method)
	}
	u, err := url.Parse(h.URL)
	if err != nil {
		return fmt.Errorf("url: %w", err)
	}
	if u.Scheme != "http" && u.Scheme != "https" {
		return fmt.Errorf("url %q: scheme must be http or https", h.URL)
	}
	if u.Host == "" {
		return fmt.Errorf("url %q has no host", h.URL)
	}
	for k, v := range h.Headers {
		if !isToken(k) {
			return fmt.Errorf("header name %q is invalid", k)
		}
		if strings.ContainsAny(v, "\r\n\x00") {
			return fmt.Errorf("header %s: value contains a line break or NUL", k)
		}
	}
	lo, hi := h.statusRange()
	if lo < 100 || hi > 599 || lo > hi {
		return fmt.Errorf("status range %d-%d is not within 100-599", lo, hi)
	}
	return nil
}

// statusRange applies the defaults to the expected status range.
func (h *HTTPCheck) statusRange() (lo, hi int) {
	lo, hi = h.StatusMin, h.StatusMax
	if lo == 0 {
		lo = DefaultStatusMin
	}
	if hi == 0 {
		hi = DefaultStatusMax
	}
	return lo, hi
}

func validateAddress(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("address %q: %w", addr, err)
	}
	if host == "" || port == "" {
		return fmt.Errorf("address %q needs host:port", addr)
	}
	return nil
}

// isToken says whether s is an RFC 9110 token (a method or header name).
func isToken(s string) bool {
	if s == "" {
		return false
	}
	for _, r := range s {
		if r > 0x7e || r <= ' ' || strings.ContainsRune(`"(),/:;<=>?@[\]{}`, r) {
			return false
		}
	}
	return true
}
