package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/api/apitest"
)

func TestShortDuration(t *testing.T) {
	tests := []struct {
		d    time.Duration
		want string
	}{
		{0, "0s"},
		{-5 * time.Second, "0s"},
		{12*time.Second + 900*time.Millisecond, "12s"},
		{4*time.Minute + 10*time.Second, "4m10s"},
		{time.Hour, "1h0m"},
		{2*time.Hour + 5*time.Minute + 59*time.Second, "2h5m"},
		{76*time.Hour + 30*time.Minute, "3d4h"},
		{400 * 24 * time.Hour, "400d0h"},
	}
	for _, tt := range tests {
		if got := shortDuration(tt.d); got != tt.want {
			t.Errorf("shortDuration(%v) = %q, want %q", tt.d, got, tt.want)
		}
	}
}

func TestParseTarget(t *testing.T) {
	tests := []struct {
		in       string
		task     string
		instance int
		wantErr  bool
	}{
		{"glm-serve", "glm-serve", -7, false},
		{"glm-serve:0", "glm-serve", 0, false},
		{"glm-serve:12", "glm-serve", 12, false},
		{"glm-serve:", "", 0, true},
		{"glm-serve:-1", "", 0, true},
		{"glm-serve:x", "", 0, true},
		{":1", "", 0, true},
		{"", "", 0, true},
	}
	for _, tt := range tests {
		task, inst, err := parseTarget(tt.in, -7)
		if (err != nil) != tt.wantErr || task != tt.task || inst != tt.instance {
			t.Errorf("parseTarget(%q) = %q, %d, %v; want %q, %d, error %t", tt.in, task, inst, err, tt.task, tt.instance, tt.wantErr)
		}
	}
}

func TestExitText(t *testing.T) {
	tests := []struct {
		e    api.Exit
		want string
	}{
		{api.Exit{}, "-"},
		{api.Exit{Code: 3, Reason: "exited"}, "exit 3"},
		{api.Exit{Signal: "SIGSEGV", Reason: "signal"}, "SIGSEGV"},
		{api.Exit{Reason: "signal"}, "signal"},
		{api.Exit{Signal: "SIGKILL", Reason: "oom_killed"}, "oom_killed"},
		{api.Exit{Reason: "unhealthy"}, "unhealthy"},
		{api.Exit{Signal: "SIGTERM", Reason: "stopped"}, "stopped"},
	}
	for _, tt := range tests {
		if got := exitText(tt.e); got != tt.want {
			t.Errorf("exitText(%+v) = %q, want %q", tt.e, got, tt.want)
		}
	}
}

func TestControl_Calls(t *testing.T) {
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"start", "glm-serve"}, []string{"start glm-serve -1"}},
		{[]string{"stop", "glm-serve:2"}, []string{"stop glm-serve 2"}},
		{[]string{"restart", "a", "b:0"}, []string{"restart a -1", "restart b 0"}},
		{[]string{"restart", "a", "b:x"}, nil}, // a bad argument stops everything
		{[]string{"logs", "--rotate"}, []string{"rotate "}},
		{[]string{"reload"}, []string{"reload dry_run=false"}},
		{[]string{"reload", "--dry-run"}, []string{"reload dry_run=true"}},
		{[]string{"logs", "glm-serve"}, []string{"logs glm-serve 0 stdout lines=100 follow=false"}},
		{[]string{"logs", "--stderr", "-n", "5", "glm-serve:3"}, []string{"logs glm-serve 3 stderr lines=5 follow=false"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			b, sock := serve(t)
			glmctl(t, sock, tt.args...)
			got := b.Calls()
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("agent saw %q, want %q", got, tt.want)
			}
		})
	}
}

func TestLogs_Tail(t *testing.T) {
	b, sock := serve(t)
	b.WriteLog("glm-serve", 1, "stderr", "a\nb\nc\n")
	r := glmctl(t, sock, "logs", "--stderr", "-n", "2", "glm-serve:1")
	if r.code != 0 || r.stdout != "b\nc\n" || r.stderr != "" {
		t.Errorf("logs = %+v, want the last two lines", r)
	}
}

func TestLogs_Follow(t *testing.T) {
	b, sock := serve(t)
	b.WriteLog("glm-serve", 0, "stdout", "before\n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"--socket", sock, "logs", "-f", "glm-serve"}, &stdout, &stderr) }()

	waitFor(t, "the tail", func() bool { return stdout.String() == "before\n" })
	waitFor(t, "the follower", func() bool { return b.LogFollowers("glm-serve", 0, "stdout") == 1 })
	b.WriteLog("glm-serve", 0, "stdout", "after\n")
	waitFor(t, "the live line", func() bool { return stdout.String() == "before\nafter\n" })

	cancel() // Ctrl-C
	if c := <-code; c != 0 || stderr.String() != "" {
		t.Errorf("interrupted logs -f: exit %d, stderr %q; want 0 and nothing", c, stderr.String())
	}
	waitFor(t, "the agent to drop the follower", func() bool { return b.LogFollowers("glm-serve", 0, "stdout") == 0 })
}

func TestEvents_Follow(t *testing.T) {
	b, sock := serve(t)
	b.Publish(api.Event{Time: t0, Type: "agent", Instance: -1, Message: "glmd started"})
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var stdout, stderr syncBuffer
	code := make(chan int, 1)
	go func() { code <- run(ctx, []string{"--socket", sock, "events", "-f", "--json"}, &stdout, &stderr) }()

	first := `{"seq":1,"time":"2026-11-22T10:00:00Z","type":"agent","instance":-1,"message":"glmd started"}` + "\n"
	waitFor(t, "the backlog", func() bool { return stdout.String() == first })
	waitFor(t, "the follower", func() bool { return b.EventFollowers() == 1 })
	b.Publish(api.Event{Time: t0, Type: "state", Task: "t", Instance: 0, State: "running", Message: "started pid 7"})
	second := `{"seq":2,"time":"2026-11-22T10:00:00Z","type":"state","task":"t","instance":0,"state":"running","message":"started pid 7"}` + "\n"
	waitFor(t, "the live event", func() bool { return stdout.String() == first+second })

	cancel()
	if c := <-code; c != 0 || stderr.String() != "" {
		t.Errorf("interrupted events -f: exit %d, stderr %q; want 0 and nothing", c, stderr.String())
	}
	waitFor(t, "the agent to drop the follower", func() bool { return b.EventFollowers() == 0 })
}

func TestCompletion_Tasks(t *testing.T) {
	b, sock := serve(t)
	b.SetStatus(fleet())
	tests := []struct {
		args []string
		want []string
	}{
		{[]string{"stop", ""}, []string{"glm-serve", "batch", "embed", "export", "bad-task", "probe", "worker"}},
		{[]string{"stop", "e"}, []string{"embed", "export"}},
		{[]string{"logs", "glm-serve:"}, []string{"glm-serve:1\trunning", "glm-serve:0\trunning", "glm-serve:2\tbackoff"}},
		{[]string{"status", "batch", "e"}, []string{"embed", "export"}},
		{[]string{"status", "embed", "e"}, []string{"export"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			r := glmctl(t, sock, append([]string{"__complete"}, tt.args...)...)
			lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
			// The last line is cobra's directive: 4 = no file completion.
			if n := len(lines); n == 0 || lines[n-1] != ":4" {
				t.Fatalf("completion output %q, want the :4 directive last", r.stdout)
			}
			got := lines[:len(lines)-1]
			if strings.Join(got, "|") != strings.Join(tt.want, "|") {
				t.Errorf("completions = %q, want %q", got, tt.want)
			}
		})
	}
}

func TestCompletion_Scripts(t *testing.T) {
	for _, shell := range []string{"bash", "zsh", "fish"} {
		r := glmctl(t, "", "completion", shell)
		if r.code != 0 || !strings.Contains(r.stdout, "glmctl") {
			t.Errorf("completion %s: exit %d, %d bytes", shell, r.code, len(r.stdout))
		}
	}
}

func TestVersion(t *testing.T) {
	fixNow(t)
	b, sock := serve(t)
	b.SetInfo(api.AgentInfo{Version: "1.2.3", Node: "gpu-01", PID: 42, StartedAt: t0.Add(-26 * time.Hour), ConfDir: "/etc/glmd/conf.d"})
	r := glmctl(t, sock, "version")
	lines := strings.Split(r.stdout, "\n")
	if r.code != 0 || len(lines) != 3 || !strings.HasPrefix(lines[0], "glmctl ") ||
		lines[1] != "glmd 1.2.3 on node gpu-01 (pid 42, up 1d2h, conf_dir /etc/glmd/conf.d)" {
		t.Errorf("version = %+v", r)
	}

	r = glmctl(t, "/nonexistent/glmd.sock", "version")
	if r.code != 1 || !strings.HasPrefix(r.stdout, "glmctl ") || !strings.HasPrefix(r.stderr, "glmctl: cannot reach glmd") {
		t.Errorf("version without agent = %+v, want the client's line and an error", r)
	}
}

func TestSocketFromEnv(t *testing.T) {
	b, sock := serve(t)
	b.SetStatus(fleet()[:1])
	t.Setenv("GLMD_SOCKET", sock)
	if r := glmctl(t, "", "status", "--json"); r.code != 0 || !strings.Contains(r.stdout, `"glm-serve"`) {
		t.Errorf("status with GLMD_SOCKET = %+v", r)
	}
	// --socket wins over the environment.
	if r := glmctl(t, "/nonexistent/glmd.sock", "status"); r.code != 1 || !strings.Contains(r.stderr, "/nonexistent/glmd.sock") {
		t.Errorf("status with --socket = %+v", r)
	}
}

// stuckBackend never finishes a stop until the request is abandoned.
type stuckBackend struct {
	*apitest.Backend
	once    sync.Once
	stopped chan struct{}
}

func (s *stuckBackend) Stop(ctx context.Context, _ string, _ int) error {
	<-ctx.Done()
	s.once.Do(func() { close(s.stopped) })
	return ctx.Err()
}

func TestTimeout(t *testing.T) {
	b := &stuckBackend{Backend: apitest.NewBackend(), stopped: make(chan struct{})}
	sock := apitest.Serve(t, b)
	r := glmctl(t, sock, "--timeout", "50ms", "stop", "glm-serve")
	want := "glmctl: glmd at " + sock + " did not answer within 50ms (raise --timeout)\n"
	if r.code != 1 || r.stderr != want {
		t.Errorf("stop past --timeout = %+v, want exit 1 and %q", r, want)
	}
	<-b.stopped // the agent saw the request go away
}

func TestHelp(t *testing.T) {
	for _, args := range [][]string{nil, {"--help"}, {"help", "status"}, {"status", "-h"}} {
		r := glmctl(t, "", args...)
		if r.code != 0 || !strings.Contains(r.stdout, "Usage:") || r.stderr != "" {
			t.Errorf("glmctl %q = exit %d, stderr %q", args, r.code, r.stderr)
		}
	}
}
