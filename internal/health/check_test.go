package health

import (
	"strings"
	"testing"
	"time"
)

// validCheck returns a check that passes Validate, for the cases to break.
func validCheck(role, typ string) Check {
	c := Check{
		Role: role, Type: typ,
		Interval: 10 * time.Second, Timeout: time.Second,
		FailureThreshold: 3, SuccessThreshold: 1,
	}
	if role == RoleStartup {
		c.StartPeriod = 10 * time.Minute
	}
	switch typ {
	case TypeHTTP:
		c.HTTP = &HTTPCheck{URL: "http://127.0.0.1:8000/health"}
	case TypeTCP:
		c.TCP = &TCPCheck{Address: "127.0.0.1:8000"}
	case TypeExec:
		c.Exec = &ExecCheck{Argv: []string{"/usr/local/bin/check"}}
	case TypeGRPC:
		c.GRPC = &GRPCCheck{Address: "127.0.0.1:9000"}
	}
	return c
}

func TestValidate(t *testing.T) {
	// with changes a copy of c, probe included.
	with := func(c Check, f func(*Check)) []Check {
		c = validCheck(c.Role, c.Type)
		f(&c)
		return []Check{c}
	}
	live := validCheck(RoleLiveness, TypeHTTP)
	for _, tc := range []struct {
		name   string
		checks []Check
		want   string // substring of the error; "" = valid
	}{
		{"none", nil, ""},
		{"one of each", []Check{validCheck(RoleStartup, TypeTCP), validCheck(RoleLiveness, TypeExec), validCheck(RoleReadiness, TypeGRPC)}, ""},
		{"readiness success threshold 2", with(validCheck(RoleReadiness, TypeHTTP), func(c *Check) { c.SuccessThreshold = 2 }), ""},
		{"two liveness", []Check{live, live}, "liveness check: more than one"},
		{"unknown role", with(live, func(c *Check) { c.Role = "alive" }), `role "alive" unknown`},
		{"unknown type", with(live, func(c *Check) { c.Type = "icmp" }), `type "icmp" unknown`},
		{"zero interval", with(live, func(c *Check) { c.Interval = 0 }), "interval must be positive"},
		{"zero timeout", with(live, func(c *Check) { c.Timeout = 0 }), "timeout must be positive"},
		{"negative initial delay", with(live, func(c *Check) { c.InitialDelay = -time.Second }), "initial_delay must not be negative"},
		{"failure threshold 0", with(live, func(c *Check) { c.FailureThreshold = 0 }), "failure_threshold must be at least 1"},
		{"success threshold 0", with(live, func(c *Check) { c.SuccessThreshold = 0 }), "success_threshold must be at least 1"},
		{"liveness success threshold 2", with(live, func(c *Check) { c.SuccessThreshold = 2 }), "success_threshold must be 1 for liveness"},
		{"startup success threshold 2", with(validCheck(RoleStartup, TypeHTTP), func(c *Check) { c.SuccessThreshold = 2 }), "success_threshold must be 1 for startup"},
		{"startup with a negative start period", with(validCheck(RoleStartup, TypeHTTP), func(c *Check) { c.StartPeriod = -time.Second }), "start_period must not be negative"},
		{"start period on liveness", with(live, func(c *Check) { c.StartPeriod = time.Minute }), "start_period applies to startup checks only"},
		{"http without request", with(live, func(c *Check) { c.HTTP = nil }), "type http without its request"},
		{"http bad scheme", with(live, func(c *Check) { c.HTTP.URL = "ftp://x/" }), "scheme must be http or https"},
		{"http no host", with(live, func(c *Check) { c.HTTP.URL = "http:///health" }), "has no host"},
		{"http bad method", with(live, func(c *Check) { c.HTTP = &HTTPCheck{URL: "http://x/", Method: "GE T"} }), "not an HTTP method"},
		{"http bad header", with(live, func(c *Check) {
			c.HTTP = &HTTPCheck{URL: "http://x/", Headers: map[string]string{"X-A": "1\r\nX-B: 2"}}
		}), "line break"},
		{"http status range", with(live, func(c *Check) { c.HTTP = &HTTPCheck{URL: "http://x/", StatusMin: 400, StatusMax: 300} }), "status range 400-300"},
		{"http status min above default max", with(live, func(c *Check) { c.HTTP = &HTTPCheck{URL: "http://x/", StatusMin: 500} }), "status range 500-399"},
		{"tcp without port", with(validCheck(RoleLiveness, TypeTCP), func(c *Check) { c.TCP.Address = "127.0.0.1" }), "address"},
		{"grpc without host", with(validCheck(RoleLiveness, TypeGRPC), func(c *Check) { c.GRPC.Address = ":9000" }), "needs host:port"},
		{"exec without argv", with(validCheck(RoleLiveness, TypeExec), func(c *Check) { c.Exec.Argv = nil }), "needs a command"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := Validate(tc.checks)
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Validate: %v", err)
			case tc.want != "" && err == nil:
				t.Fatalf("Validate passed, want an error with %q", tc.want)
			case tc.want != "" && !strings.Contains(err.Error(), tc.want):
				t.Fatalf("Validate: %v\nwant it to contain %q", err, tc.want)
			}
		})
	}
}

func TestValidate_ReportsEveryProblem(t *testing.T) {
	c := validCheck(RoleLiveness, TypeHTTP)
	c.Interval, c.FailureThreshold = 0, 0
	err := Validate([]Check{c})
	for _, want := range []string{"interval", "failure_threshold"} {
		if err == nil || !strings.Contains(err.Error(), want) {
			t.Errorf("Validate: %v; want it to mention %s", err, want)
		}
	}
}

func TestNewMonitor_ExecNeedsDeps(t *testing.T) {
	if _, err := NewMonitor([]Check{validCheck(RoleLiveness, TypeExec)}, Deps{}); err == nil {
		t.Fatal("NewMonitor accepted an exec check without Deps.Exec")
	}
	if _, err := NewMonitor([]Check{{Role: RoleLiveness}}, Deps{}); err == nil {
		t.Fatal("NewMonitor accepted an invalid check")
	}
}
