package api_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/api"
	"github.com/open-autoglm/glmd/internal/api/apitest"
)

var t0 = time.Date(2026, 11, 22, 10, 0, 0, 0, time.UTC)

// rawDo sends a request over the socket without the Client, so that the
// tests see the wire: status, headers and body as sent.
func rawDo(t *testing.T, sock, method, path string) (*http.Response, string) {
	t.Helper()
	hc := &http.Client{Transport: &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", sock)
		},
		DisableKeepAlives: true,
	}}
	req, err := http.NewRequest(method, "http://glmd"+path, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := hc.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s %s: read body: %v", method, path, err)
	}
	return resp, string(body)
}

func TestServer_Routes(t *testing.T) {
	b := apitest.NewBackend()
	sock := apitest.Serve(t, b)
	c := api.NewClient(sock)
	ctx := context.Background()

	tests := []struct {
		name string
		call func() error
		want string // the call the backend saw; "" for none
	}{
		{"start all", func() error { return c.Start(ctx, "glm-serve", -1) }, "start glm-serve -1"},
		{"start one", func() error { return c.Start(ctx, "glm-serve", 2) }, "start glm-serve 2"},
		{"stop", func() error { return c.Stop(ctx, "glm-serve", 0) }, "stop glm-serve 0"},
		{"restart", func() error { return c.Restart(ctx, "batch", -1) }, "restart batch -1"},
		{"task name escaped", func() error { return c.Stop(ctx, "a b", 1) }, "stop a b 1"},
		{"reload", func() error { _, err := c.Reload(ctx, false); return err }, "reload dry_run=false"},
		{"reload dry run", func() error { _, err := c.Reload(ctx, true); return err }, "reload dry_run=true"},
		{"rotate all", func() error { return c.RotateLogs(ctx, "") }, "rotate "},
		{"rotate one", func() error { return c.RotateLogs(ctx, "glm-serve") }, "rotate glm-serve"},
		{"logs", func() error {
			rc, err := c.Logs(ctx, api.LogRequest{Task: "glm-serve", Instance: 1, Stream: "stderr", Lines: 5})
			if err == nil {
				rc.Close()
			}
			return err
		}, "logs glm-serve 1 stderr lines=5 follow=false"},
		{"events", func() error { return c.Events(ctx, false, func(api.Event) error { return nil }) }, "events follow=false"},
		{"info", func() error { _, err := c.Info(ctx); return err }, ""},
		{"status", func() error { _, err := c.Status(ctx, api.StatusOptions{}); return err }, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := len(b.Calls())
			if err := tt.call(); err != nil {
				t.Fatalf("call: %v", err)
			}
			got := b.Calls()[before:]
			var want []string
			if tt.want != "" {
				want = []string{tt.want}
			}
			if !slices.Equal(got, want) {
				t.Errorf("backend calls = %q, want %q", got, want)
			}
		})
	}
}

func TestServer_Info(t *testing.T) {
	b := apitest.NewBackend()
	want := api.AgentInfo{Version: "1.2.3", Node: "gpu-01", PID: 42, StartedAt: t0, ConfDir: "/etc/glmd/conf.d", Dev: true}
	b.SetInfo(want)
	got, err := api.NewClient(apitest.Serve(t, b)).Info(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if got != want {
		t.Errorf("Info = %+v, want %+v", got, want)
	}
}

func TestServer_Status_JSON(t *testing.T) {
	started := t0.Add(-time.Hour)
	tests := []struct {
		name string
		rows []api.InstanceStatus
		want string
	}{
		{"no tasks", nil, "[]\n"},
		{"nil gpus become an array", []api.InstanceStatus{{Task: "a", State: "pending", Since: t0}},
			`[{"task":"a","instance":0,"state":"pending","pid":0,"restarts":0,"ready":false,` +
				`"last_exit":{"code":0,"signal":"","reason":""},"gpus":[],"message":"","since":"2026-11-22T10:00:00Z"}]` + "\n"},
		{"every field", []api.InstanceStatus{{
			Task: "glm-serve", Instance: 1, State: "running", PID: 1234, Restarts: 2, Ready: true,
			LastExit: api.Exit{Code: 0, Signal: "SIGKILL", Reason: "oom_killed"}, GPUs: []string{"GPU-1"},
			Message: "ok", Kind: "service", File: "glm-serve.toml", Since: t0, StartedAt: &started,
			Ports: map[string]int{"http": 8001}, NextStart: &t0,
		}},
			`[{"task":"glm-serve","instance":1,"state":"running","pid":1234,"restarts":2,"ready":true,` +
				`"last_exit":{"code":0,"signal":"SIGKILL","reason":"oom_killed"},"gpus":["GPU-1"],"message":"ok",` +
				`"kind":"service","file":"glm-serve.toml","since":"2026-11-22T10:00:00Z","started_at":"2026-11-22T09:00:00Z",` +
				`"ports":{"http":8001},"next_start":"2026-11-22T10:00:00Z"}]` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := apitest.NewBackend()
			b.SetStatus(tt.rows)
			sock := apitest.Serve(t, b)
			resp, body := rawDo(t, sock, http.MethodGet, "/v1/status")
			if resp.StatusCode != http.StatusOK {
				t.Fatalf("status code %d, body %s", resp.StatusCode, body)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q", ct)
			}
			if body != tt.want {
				t.Errorf("body\n got %s\nwant %s", body, tt.want)
			}
			rows, err := api.NewClient(sock).Status(context.Background(), api.StatusOptions{})
			if err != nil {
				t.Fatal(err)
			}
			if len(rows) != len(tt.rows) {
				t.Errorf("client got %d rows, want %d", len(rows), len(tt.rows))
			}
		})
	}
}

func TestServer_Reload_Plan(t *testing.T) {
	tests := []struct {
		name string
		plan api.Plan
		want string
	}{
		{"empty plan has arrays", api.Plan{}, `{"changes":[],"errors":[]}` + "\n"},
		{"changes and errors", api.Plan{
			Changes: []api.Change{{Task: "glm-serve", File: "glm-serve.toml", Action: api.ActionRestart, Reasons: []string{"command changed"}}, {Task: "new", Action: api.ActionAdd}},
			Errors:  []string{"bad.toml:3:1: command: required"},
		}, `{"changes":[{"task":"glm-serve","file":"glm-serve.toml","action":"restart","reasons":["command changed"]},` +
			`{"task":"new","action":"add"}],"errors":["bad.toml:3:1: command: required"]}` + "\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := apitest.NewBackend()
			b.SetPlan(tt.plan)
			sock := apitest.Serve(t, b)
			resp, body := rawDo(t, sock, http.MethodPost, "/v1/reload?dry_run=1")
			if resp.StatusCode != http.StatusOK || body != tt.want {
				t.Errorf("POST /v1/reload = %d %s, want 200 %s", resp.StatusCode, body, tt.want)
			}
			got, err := api.NewClient(sock).Reload(context.Background(), true)
			if err != nil {
				t.Fatal(err)
			}
			if len(got.Changes) != len(tt.plan.Changes) || len(got.Errors) != len(tt.plan.Errors) {
				t.Errorf("client plan = %+v, want %+v", got, tt.plan)
			}
		})
	}
}

func TestServer_BackendErrors(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		wantCode int
		wantIs   error
	}{
		{"not found", fmt.Errorf("task %q: %w", "nope", api.ErrNotFound), http.StatusNotFound, api.ErrNotFound},
		{"conflict", fmt.Errorf("glm-serve:0 is stopping: %w", api.ErrConflict), http.StatusConflict, api.ErrConflict},
		{"other", errors.New("cgroup: permission denied"), http.StatusInternalServerError, nil},
		{"cancelled", fmt.Errorf("stop glm-serve: %w", context.Canceled), http.StatusServiceUnavailable, nil},
	}
	methods := []struct {
		method string
		path   string
		call   func(c *api.Client) error
	}{
		{"stop", "/v1/tasks/x/stop", func(c *api.Client) error { return c.Stop(context.Background(), "x", -1) }},
		{"reload", "/v1/reload", func(c *api.Client) error { _, err := c.Reload(context.Background(), false); return err }},
		{"logs", "/v1/logs/x/0", func(c *api.Client) error {
			_, err := c.Logs(context.Background(), api.LogRequest{Task: "x"})
			return err
		}},
		{"rotate", "/v1/logs/rotate", func(c *api.Client) error { return c.RotateLogs(context.Background(), "x") }},
		{"events", "/v1/events", func(c *api.Client) error {
			return c.Events(context.Background(), true, func(api.Event) error { return nil })
		}},
	}
	for _, tt := range tests {
		for _, m := range methods {
			t.Run(tt.name+"/"+m.method, func(t *testing.T) {
				b := apitest.NewBackend()
				b.SetError(m.method, tt.err)
				sock := apitest.Serve(t, b)
				err := m.call(api.NewClient(sock))
				if err == nil {
					t.Fatal("call succeeded, want an error")
				}
				if err.Error() != tt.err.Error() {
					t.Errorf("error = %q, want the backend's %q", err, tt.err)
				}
				var se *api.StatusError
				if !errors.As(err, &se) || se.Code != tt.wantCode {
					t.Errorf("error %#v, want a StatusError with code %d", err, tt.wantCode)
				}
				for _, sentinel := range []error{api.ErrNotFound, api.ErrConflict} {
					if got, want := errors.Is(err, sentinel), sentinel == tt.wantIs; got != want {
						t.Errorf("errors.Is(err, %v) = %t, want %t", sentinel, got, want)
					}
				}
			})
		}
	}
}

func TestServer_BadRequests(t *testing.T) {
	tests := []struct {
		method, path string
		wantCode     int
		wantMsg      string
	}{
		{"POST", "/v1/tasks/x/kill", 404, `unknown action "kill" (want start, stop or restart)`},
		{"POST", "/v1/tasks/x/stop?instance=a", 400, `invalid instance "a": want a number >= 0, or -1 for all`},
		{"POST", "/v1/tasks/x/stop?instance=-2", 400, `invalid instance "-2": want a number >= 0, or -1 for all`},
		{"POST", "/v1/reload?dry_run=maybe", 400, `invalid dry_run "maybe": want 1 or 0`},
		{"GET", "/v1/logs/x/-1", 400, `invalid instance "-1": want a number >= 0`},
		{"GET", "/v1/logs/x/0?stream=stdin", 400, `invalid stream "stdin": want stdout or stderr`},
		{"GET", "/v1/logs/x/0?lines=-1", 400, `invalid lines "-1": want a number >= 0`},
		{"GET", "/v1/logs/x/0?follow=yes", 400, `invalid follow "yes": want 1 or 0`},
		{"GET", "/v1/events?follow=yes", 400, `invalid follow "yes": want 1 or 0`},
		{"POST", "/v1/status", 405, `method POST not allowed on /v1/status (use GET)`},
		{"GET", "/v1/reload", 405, `method GET not allowed on /v1/reload (use POST)`},
		{"GET", "/v1/tasks/x/stop", 405, `method GET not allowed on /v1/tasks/x/stop (use POST)`},
		{"GET", "/v2/status", 404, `no such endpoint: GET /v2/status`},
	}
	b := apitest.NewBackend()
	sock := apitest.Serve(t, b)
	for _, tt := range tests {
		t.Run(tt.method+" "+tt.path, func(t *testing.T) {
			resp, body := rawDo(t, sock, tt.method, tt.path)
			if resp.StatusCode != tt.wantCode {
				t.Errorf("status code %d, want %d", resp.StatusCode, tt.wantCode)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type = %q, want application/json", ct)
			}
			var eb struct{ Error string }
			if err := json.Unmarshal([]byte(body), &eb); err != nil || eb.Error != tt.wantMsg {
				t.Errorf("body %s, want error %q", body, tt.wantMsg)
			}
		})
	}
	if calls := b.Calls(); len(calls) != 0 {
		t.Errorf("bad requests reached the backend: %q", calls)
	}
}

func TestServer_Logs_Tail(t *testing.T) {
	b := apitest.NewBackend()
	b.WriteLog("glm-serve", 0, "stdout", "one\ntwo\nthree\n")
	b.WriteLog("glm-serve", 0, "stderr", "oops\n")
	sock := apitest.Serve(t, b)
	tests := []struct {
		path string
		want string
	}{
		{"/v1/logs/glm-serve/0", "one\ntwo\nthree\n"},
		{"/v1/logs/glm-serve/0?lines=2", "two\nthree\n"},
		{"/v1/logs/glm-serve/0?lines=0", ""},
		{"/v1/logs/glm-serve/0?stream=stderr", "oops\n"},
		{"/v1/logs/glm-serve/1", ""},
	}
	for _, tt := range tests {
		t.Run(tt.path, func(t *testing.T) {
			resp, body := rawDo(t, sock, http.MethodGet, tt.path)
			if resp.StatusCode != http.StatusOK || body != tt.want {
				t.Errorf("GET %s = %d %q, want 200 %q", tt.path, resp.StatusCode, body, tt.want)
			}
			if ct := resp.Header.Get("Content-Type"); ct != "text/plain; charset=utf-8" {
				t.Errorf("Content-Type = %q", ct)
			}
		})
	}
	if got := b.Calls()[0]; got != "logs glm-serve 0 stdout lines=100 follow=false" {
		t.Errorf("defaults: backend saw %q, want stdout and %d lines", got, api.DefaultLogLines)
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// readN reads exactly len(want) bytes from r, or fails the test.
func readN(t *testing.T, r io.Reader, want string) {
	t.Helper()
	buf := make([]byte, len(want))
	if _, err := io.ReadFull(r, buf); err != nil {
		t.Fatalf("read %q: %v", want, err)
	}
	if string(buf) != want {
		t.Fatalf("read %q, want %q", buf, want)
	}
}

func TestServer_Logs_Follow(t *testing.T) {
	b := apitest.NewBackend()
	b.WriteLog("glm-serve", 1, "stdout", "old\nlast\n")
	sock := apitest.Serve(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	rc, err := api.NewClient(sock).Logs(ctx, api.LogRequest{Task: "glm-serve", Instance: 1, Stream: "stdout", Lines: 1, Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	readN(t, rc, "last\n")
	// Each write arrives on its own: the server flushes as data comes.
	for _, line := range []string{"live 1\n", "live 2\n"} {
		go b.WriteLog("glm-serve", 1, "stdout", line)
		readN(t, rc, line)
	}

	cancel()
	if _, err := io.ReadAll(rc); !errors.Is(err, context.Canceled) {
		t.Errorf("read after cancel: %v, want context.Canceled", err)
	}
	waitFor(t, "the server to drop the follower", func() bool { return b.LogFollowers("glm-serve", 1, "stdout") == 0 })
}

func TestServer_Events(t *testing.T) {
	b := apitest.NewBackend()
	evs := []api.Event{
		{Time: t0, Type: "state", Task: "glm-serve", Instance: 0, State: "running", Message: "started pid 1234"},
		{Time: t0, Type: "state", Task: "glm-serve", Instance: 1, State: "exited", Message: "exited", Exit: &api.Exit{Code: 1, Reason: "exited"}},
		{Time: t0, Type: "reload", Instance: -1, Message: "1 change"},
	}
	for _, ev := range evs {
		b.Publish(ev)
	}
	sock := apitest.Serve(t, b)

	resp, body := rawDo(t, sock, http.MethodGet, "/v1/events")
	if ct := resp.Header.Get("Content-Type"); ct != "application/x-ndjson" {
		t.Errorf("Content-Type = %q", ct)
	}
	want := `{"seq":1,"time":"2026-11-22T10:00:00Z","type":"state","task":"glm-serve","instance":0,"state":"running","message":"started pid 1234"}
{"seq":2,"time":"2026-11-22T10:00:00Z","type":"state","task":"glm-serve","instance":1,"state":"exited","message":"exited","exit":{"code":1,"signal":"","reason":"exited"}}
{"seq":3,"time":"2026-11-22T10:00:00Z","type":"reload","instance":-1,"message":"1 change"}
`
	if body != want {
		t.Errorf("GET /v1/events\n got %s\nwant %s", body, want)
	}

	var got []api.Event
	err := api.NewClient(sock).Events(context.Background(), false, func(ev api.Event) error {
		got = append(got, ev)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got[1].Exit == nil || got[1].Exit.Code != 1 || got[2].Seq != 3 {
		t.Errorf("client events = %+v", got)
	}
}

func TestServer_Events_Follow(t *testing.T) {
	b := apitest.NewBackend()
	b.Publish(api.Event{Type: "agent", Instance: -1, Message: "glmd started"})
	sock := apitest.Serve(t, b)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	got := make(chan api.Event)
	done := make(chan error, 1)
	go func() {
		done <- api.NewClient(sock).Events(ctx, true, func(ev api.Event) error {
			select {
			case got <- ev:
			case <-ctx.Done():
			}
			return nil
		})
	}()
	recv := func(wantSeq uint64) {
		t.Helper()
		select {
		case ev := <-got:
			if ev.Seq != wantSeq {
				t.Fatalf("event seq %d, want %d", ev.Seq, wantSeq)
			}
		case err := <-done:
			t.Fatalf("stream ended early: %v", err)
		case <-time.After(10 * time.Second):
			t.Fatalf("no event %d within 10 s", wantSeq)
		}
	}
	recv(1) // the backlog
	waitFor(t, "the follower", func() bool { return b.EventFollowers() == 1 })
	b.Publish(api.Event{Type: "state", Task: "t", State: "running"})
	recv(2)
	b.Publish(api.Event{Type: "state", Task: "t", State: "stopping"})
	recv(3)

	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Errorf("Events after cancel = %v, want context.Canceled", err)
	}
	waitFor(t, "the server to drop the follower", func() bool { return b.EventFollowers() == 0 })
}

func TestClient_Events_CallbackError(t *testing.T) {
	b := apitest.NewBackend()
	b.Publish(api.Event{Type: "agent"})
	b.Publish(api.Event{Type: "agent"})
	sock := apitest.Serve(t, b)
	stop := errors.New("enough")
	n := 0
	err := api.NewClient(sock).Events(context.Background(), true, func(api.Event) error { n++; return stop })
	if !errors.Is(err, stop) || n != 1 {
		t.Errorf("Events = %v after %d events, want the callback's error after 1", err, n)
	}
	waitFor(t, "the server to drop the follower", func() bool { return b.EventFollowers() == 0 })
}

// TestServe_ShutdownEndsStreams checks that cancelling Serve's context ends
// the streams that follow, returns nil and removes the socket file.
func TestServe_ShutdownEndsStreams(t *testing.T) {
	sock := shortSocketPath(t)
	l, err := api.Listen(sock, "")
	if err != nil {
		t.Fatal(err)
	}
	b := apitest.NewBackend()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	served := make(chan error, 1)
	go func() { served <- api.NewServer(b, nil).Serve(ctx, l) }()

	c := api.NewClient(sock)
	events := make(chan error, 1)
	go func() {
		events <- c.Events(context.Background(), true, func(api.Event) error { return nil })
	}()
	rc, err := c.Logs(context.Background(), api.LogRequest{Task: "t", Stream: "stdout", Follow: true})
	if err != nil {
		t.Fatal(err)
	}
	defer rc.Close()
	waitFor(t, "the event follower", func() bool { return b.EventFollowers() == 1 })

	cancel()
	select {
	case err := <-served:
		if err != nil {
			t.Errorf("Serve = %v, want nil", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return within 10 s of its context ending")
	}
	if err := <-events; err != nil {
		t.Errorf("Events after shutdown = %v, want nil (the end of the stream)", err)
	}
	if data, err := io.ReadAll(rc); err != nil || len(data) != 0 {
		t.Errorf("logs after shutdown = %q, %v; want the end of the stream", data, err)
	}
	if _, err := c.Info(context.Background()); err == nil || !strings.Contains(err.Error(), "cannot reach glmd") {
		t.Errorf("Info after shutdown = %v, want cannot reach", err)
	}
}
