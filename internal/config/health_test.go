package config

import (
	"reflect"
	"slices"
	"strings"
	"testing"
	"testing/fstest"
	"time"
)

func TestLoadTasks_HealthDefaults(t *testing.T) {
	defaults := func(c HealthCheck) HealthCheck {
		c.Interval, c.Timeout = DefaultHealthInterval, DefaultHealthTimeout
		c.FailureThreshold, c.SuccessThreshold = DefaultHealthFailureThreshold, DefaultHealthSuccessThreshold
		return c
	}
	tests := []struct {
		name string
		src  string
		want []HealthCheck
	}{
		{"none", sleep, nil},
		{"empty array", sleep + "health = []\n", nil},
		{
			"http",
			sleep + "[[health]]\nrole = \"liveness\"\ntype = \"http\"\nurl = \"http://h:1/\"\n",
			[]HealthCheck{defaults(HealthCheck{Role: RoleLiveness, Type: ProbeHTTP, URL: "http://h:1/", Method: "GET", Status: StatusRange{200, 399}})},
		},
		{
			"startup gets start_period",
			sleep + "[[health]]\nrole = \"startup\"\ntype = \"tcp\"\naddress = \"h:1\"\n",
			[]HealthCheck{defaults(HealthCheck{Role: RoleStartup, Type: ProbeTCP, Address: "h:1", StartPeriod: DefaultHealthStartPeriod})},
		},
		{
			"a short interval takes the timeout down",
			sleep + "[[health]]\nrole = \"readiness\"\ntype = \"exec\"\ncommand = [\"/bin/true\"]\ninterval = \"250ms\"\n",
			[]HealthCheck{{Role: RoleReadiness, Type: ProbeExec, Command: []string{"/bin/true"},
				Interval: 250 * time.Millisecond, Timeout: 250 * time.Millisecond, FailureThreshold: 3, SuccessThreshold: 1}},
		},
		{
			"timeout equal to interval",
			sleep + "[[health]]\nrole = \"readiness\"\ntype = \"grpc\"\naddress = \"h:1\"\ninterval = \"2s\"\ntimeout = \"2s\"\nsuccess_threshold = 4\n",
			[]HealthCheck{{Role: RoleReadiness, Type: ProbeGRPC, Address: "h:1",
				Interval: 2 * time.Second, Timeout: 2 * time.Second, FailureThreshold: 3, SuccessThreshold: 4}},
		},
		{
			"empty headers are none",
			sleep + "[[health]]\nrole = \"liveness\"\ntype = \"http\"\nurl = \"http://h/\"\nheaders = {}\n",
			[]HealthCheck{defaults(HealthCheck{Role: RoleLiveness, Type: ProbeHTTP, URL: "http://h/", Method: "GET", Status: StatusRange{200, 399}})},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			task := mustLoad(t, tt.src, LoadOptions{})
			if !reflect.DeepEqual(task.Health, tt.want) {
				t.Errorf("Health = %+v\nwant %+v", task.Health, tt.want)
			}
		})
	}
}

func TestTask_Render_Health(t *testing.T) {
	src := `name = "glm"
command = ["serve"]
port = 0
ports = { grpc = 9000 }

[[health]]
role = "startup"
type = "exec"
command = ["/bin/check", "{{.Name}}-{{.Instance}}", ":{{.Port}}"]

[[health]]
role = "liveness"
type = "grpc"
address = "127.0.0.1:{{.Ports.grpc}}"
service = "{{.Name}}"

[[health]]
role = "readiness"
type = "http"
url = "http://{{.Node}}:{{.Port}}/v1/completions"
method = "POST"
body = '{"prompt": "{{.Name}}", "max_tokens": 1}'
body_contains = "{{.Name}}"
headers = { Content-Type = "application/json", X-Instance = "{{.Instance}}" }
`
	task := mustLoad(t, src, LoadOptions{Node: "gpu01"})
	inst, err := task.Render(Vars{Instance: 2, Node: "gpu07", Port: 41234, Ports: map[string]int{"grpc": 9002}})
	if err != nil {
		t.Fatal(err)
	}
	want := []HealthCheck{
		{Role: RoleStartup, Type: ProbeExec, Command: []string{"/bin/check", "glm-2", ":41234"},
			Interval: 10 * time.Second, Timeout: time.Second, FailureThreshold: 3, SuccessThreshold: 1, StartPeriod: 10 * time.Minute},
		// service is not a template: it names a gRPC service, as written.
		{Role: RoleLiveness, Type: ProbeGRPC, Address: "127.0.0.1:9002", Service: "{{.Name}}",
			Interval: 10 * time.Second, Timeout: time.Second, FailureThreshold: 3, SuccessThreshold: 1},
		// body_contains is not a template either: it is matched as written.
		{Role: RoleReadiness, Type: ProbeHTTP, URL: "http://gpu07:41234/v1/completions", Method: "POST",
			Headers: map[string]string{"Content-Type": "application/json", "X-Instance": "2"},
			Body:    `{"prompt": "glm", "max_tokens": 1}`, BodyContains: "{{.Name}}", Status: StatusRange{200, 399},
			Interval: 10 * time.Second, Timeout: time.Second, FailureThreshold: 3, SuccessThreshold: 1},
	}
	if !reflect.DeepEqual(inst.Health, want) {
		t.Errorf("Health =\n%+v\nwant\n%+v", inst.Health, want)
	}
	// What an instance gets is its own: changing it leaves the task alone.
	before := cloneTask(task)
	scribble(reflect.ValueOf(&inst))
	if !reflect.DeepEqual(*task, before) {
		t.Error("changing a rendered instance changed the task")
	}
	if shared := sharedRefs(inst.Health, task.Health); len(shared) > 0 {
		t.Errorf("instance shares %q with the task", shared)
	}
}

func TestTask_Render_HealthErrors(t *testing.T) {
	// Validation renders instance 0; instance 1 renders a line break.
	src := sleep + "instances = 2\n[[health]]\nrole = \"readiness\"\ntype = \"http\"\nurl = \"http://h/\"\n" +
		"headers = { X-A = \"a{{if eq .Instance 1}}\\r\\nX-Injected: 1{{end}}\" }\n"
	task := mustLoad(t, src, LoadOptions{})
	if _, err := task.Render(Vars{Instance: 0}); err != nil {
		t.Fatalf("instance 0: %v", err)
	}
	_, err := task.Render(Vars{Instance: 1})
	if want := "task x: health[0].headers.X-A: contains a line break"; err == nil || !strings.HasPrefix(err.Error(), want) {
		t.Errorf("instance 1: %v, want %q", err, want)
	}
	// No health checks, no Health.
	inst, err := mustLoad(t, sleep, LoadOptions{}).Render(Vars{})
	if err != nil || inst.Health != nil {
		t.Errorf("Render without checks: %+v, %v", inst.Health, err)
	}
}

func TestKeyHint_Health(t *testing.T) {
	tests := []struct{ src, want string }{ // sleep is line 1
		{`url = "http://h/"` + "\n", `x.toml:2:1: unknown key "url" (did you mean "health.url"? it belongs in [[health]])`},
		// [stop] before [[health]]: a plain table is the likelier home.
		{`timeout = "1s"` + "\n", `x.toml:2:1: unknown key "timeout" (did you mean "stop.timeout"? it belongs in [stop])`},
		{`interval = "1s"` + "\n", `x.toml:2:1: unknown key "interval" (did you mean "health.interval"? it belongs in [[health]])`},
		{"[[health]]\nrole = \"liveness\"\ntype = \"http\"\nurl = \"http://h/\"\n[health.header]\nA = \"b\"\n",
			`x.toml:6:1: unknown key "health[0].header" (did you mean "health[0].headers"?)`},
		{"[[health]]\nrole = \"liveness\"\ntype = \"tcp\"\naddress = \"h:1\"\nTimeoutSeconds = 1\n",
			`x.toml:6:1: unknown key "health[0].TimeoutSeconds" (did you mean "health[0].timeout"?)`},
		{"[[health]]\nrole = \"liveness\"\ntype = \"tcp\"\naddress = \"h:1\"\nfailures_before_critical = 1\n",
			`x.toml:6:1: unknown key "health[0].failures_before_critical" (did you mean "health[0].failure_threshold"?)`},
	}
	for _, tt := range tests {
		_, errs := LoadTasks(fstest.MapFS{"x.toml": file(sleep + tt.src)}, LoadOptions{})
		if lines := errorLines(errs); !slices.Equal(lines, []string{tt.want}) {
			t.Errorf("errors %q\nwant %q", lines, tt.want)
		}
	}
}

func TestParseStatusRange(t *testing.T) {
	ok := map[any]StatusRange{
		int64(200): {200, 200}, "200": {200, 200}, "200-299": {200, 299}, "100-599": {100, 599}, "404-404": {404, 404},
	}
	for in, want := range ok {
		got, err := parseStatusRange(in)
		if err != nil || got != want {
			t.Errorf("parseStatusRange(%#v) = %v, %v; want %v", in, got, err, want)
		}
	}
	bad := map[any]string{
		int64(99):   "99 is not an HTTP status code (100 to 599)",
		"600":       `"600": 600 is not an HTTP status code (100 to 599)`,
		"200-600":   `"200-600": 600 is not an HTTP status code (100 to 599)`,
		"299-200":   `"299-200" runs backwards (try "200-299")`,
		"4xx":       `"4xx" is not a status range (try "400-499")`,
		"200 - 299": `"200 - 299" is not a status range (no spaces: try "200-299")`,
		"200,201":   `"200,201" is not a status code or range (such as "200" or "200-299")`,
		"":          `"" is not a status code or range (such as "200" or "200-299")`,
		"-200":      `"-200" is not a status code or range (such as "200" or "200-299")`,
		"+200":      `"+200" is not a status code or range (such as "200" or "200-299")`,
		true:        `must be a status code or range such as "200-399", not a boolean`,
	}
	for in, want := range bad {
		if _, err := parseStatusRange(in); err == nil || err.Error() != want {
			t.Errorf("parseStatusRange(%#v): error %v, want %s", in, err, want)
		}
	}
}

func TestStatusRange(t *testing.T) {
	r := StatusRange{200, 399}
	for code, want := range map[int]bool{199: false, 200: true, 302: true, 399: true, 400: false} {
		if r.Contains(code) != want {
			t.Errorf("%v.Contains(%d) = %v", r, code, !want)
		}
	}
	if r.String() != "200-399" || (StatusRange{204, 204}).String() != "204" {
		t.Errorf("String: %q, %q", r.String(), StatusRange{204, 204}.String())
	}
}

func TestCheckAddress(t *testing.T) {
	ok := []string{"127.0.0.1:8000", "localhost:1", "[::1]:65535", "gpu01.example:50051"}
	for _, a := range ok {
		if err := checkAddress(a, a); err != nil {
			t.Errorf("%q: %v", a, err)
		}
	}
	bad := map[string]string{
		"localhost:0":      `"localhost:0": port "0" is not a number from 1 to 65535`,
		"localhost:65536":  `"localhost:65536": port "65536" is not a number from 1 to 65535`,
		"localhost:+80":    `"localhost:+80": port "+80" is not a number from 1 to 65535`,
		"tcp://h:1":        `"tcp://h:1" is a URL, not host:port (try "h:1")`,
		":80":              `":80" has no host (try "127.0.0.1:80")`,
		"h":                `"h" has no port (host:port, such as "h:8000")`,
		"a:b:c":            `"a:b:c" is not host:port (such as "127.0.0.1:8000"; an IPv6 address in brackets, "[::1]:8000")`,
		"http://h:1/ready": `"http://h:1/ready" is a URL, not host:port (try "h:1")`,
	}
	for a, want := range bad {
		if err := checkAddress(a, a); err == nil || err.Error() != want {
			t.Errorf("%q: error %v, want %s", a, err, want)
		}
	}
}
