package health

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"go.uber.org/goleak"
)

// probeOnce runs check c's probe once, as a monitor would, with a transport
// of the test's own (closed at the end).
func probeOnce(t *testing.T, c Check, deps Deps) Result {
	t.Helper()
	if c.Role == "" {
		c.Role = RoleLiveness
	}
	if c.Interval == 0 {
		c.Interval, c.Timeout, c.FailureThreshold, c.SuccessThreshold = time.Second, 5*time.Second, 1, 1
	}
	if deps.Transport == nil {
		tr := NewTransport()
		t.Cleanup(tr.CloseIdleConnections)
		deps.Transport = tr
	}
	m, err := NewMonitor([]Check{c}, deps)
	if err != nil {
		t.Fatal(err)
	}
	return runProbe(t.Context(), m.probers[0], c.Timeout)
}

func httpCheck(h HTTPCheck) Check { return Check{Type: TypeHTTP, HTTP: &h} }

// freeAddr is a loopback address where nothing listens.
func freeAddr(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestProbeHTTP(t *testing.T) {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, `{"status":"ok"}`) })
	mux.HandleFunc("GET /down", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusServiceUnavailable) })
	mux.HandleFunc("GET /moved", func(w http.ResponseWriter, r *http.Request) { http.Redirect(w, r, "/down", http.StatusFound) })
	mux.HandleFunc("GET /nocontent", func(w http.ResponseWriter, _ *http.Request) { w.WriteHeader(http.StatusNoContent) })
	mux.HandleFunc("GET /big", func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, strings.Repeat("x", MaxBody)+"ok")
	})
	mux.HandleFunc("GET /auth", func(w http.ResponseWriter, r *http.Request) {
		if r.Header.Get("Authorization") != "Bearer s3cret" || r.Host != "llm.internal" ||
			r.Header.Get("User-Agent") != userAgent || r.Header.Get("Accept-Encoding") != "" {
			w.WriteHeader(http.StatusForbidden)
			return
		}
		io.WriteString(w, "ok")
	})
	// A one-token completion: the model decodes, not just the port answers.
	mux.HandleFunc("POST /v1/completions", func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Header.Get("Content-Type") != "application/json" || !strings.Contains(string(b), `"max_tokens":1`) {
			w.WriteHeader(http.StatusBadRequest)
			return
		}
		io.WriteString(w, `{"choices":[{"text":"Hi"}]}`)
	})
	mux.HandleFunc("GET /hangup", func(w http.ResponseWriter, _ *http.Request) {
		conn, _, err := http.NewResponseController(w).Hijack()
		if err == nil {
			conn.Close()
		}
	})
	srv := httptest.NewServer(mux)
	t.Cleanup(srv.Close)
	tlsSrv := httptest.NewTLSServer(mux) // a self-signed certificate
	t.Cleanup(tlsSrv.Close)
	refused := "http://" + freeAddr(t) + "/health"

	for _, tc := range []struct {
		name    string
		check   HTTPCheck
		outcome Outcome
		msg     string
	}{
		{"ok", HTTPCheck{URL: srv.URL + "/health"}, OutcomeSuccess, "GET " + srv.URL + "/health: 200"},
		{"503", HTTPCheck{URL: srv.URL + "/down"}, OutcomeFailure, "GET " + srv.URL + "/down: 503"},
		{"redirect not followed, 3xx passes by default", HTTPCheck{URL: srv.URL + "/moved"}, OutcomeSuccess, ": 302"},
		{"redirect outside the range", HTTPCheck{URL: srv.URL + "/moved", StatusMax: 299}, OutcomeFailure, ": 302"},
		{"status range", HTTPCheck{URL: srv.URL + "/nocontent", StatusMin: 204, StatusMax: 204}, OutcomeSuccess, ": 204"},
		{"status below the range", HTTPCheck{URL: srv.URL + "/health", StatusMin: 204, StatusMax: 299}, OutcomeFailure, ": 200"},
		{"404", HTTPCheck{URL: srv.URL + "/nothing"}, OutcomeFailure, ": 404"},
		{"body contains", HTTPCheck{URL: srv.URL + "/health", BodyContains: `"ok"`}, OutcomeSuccess, ": 200"},
		{"body lacks", HTTPCheck{URL: srv.URL + "/health", BodyContains: "SERVING"}, OutcomeFailure, `/health: body lacks "SERVING"`},
		{"body read up to MaxBody", HTTPCheck{URL: srv.URL + "/big", BodyContains: "ok"}, OutcomeFailure, `body lacks "ok"`},
		{"headers and host", HTTPCheck{URL: srv.URL + "/auth", Headers: map[string]string{
			"Authorization": "Bearer s3cret", "Host": "llm.internal",
		}}, OutcomeSuccess, ": 200"},
		{"headers missing", HTTPCheck{URL: srv.URL + "/auth"}, OutcomeFailure, ": 403"},
		{"POST completion", HTTPCheck{
			Method: "POST", URL: srv.URL + "/v1/completions",
			Headers:      map[string]string{"Content-Type": "application/json"},
			Body:         `{"model":"glm","prompt":"Hi","max_tokens":1}`,
			BodyContains: `"choices"`,
		}, OutcomeSuccess, "POST " + srv.URL + "/v1/completions: 200"},
		{"POST without its body", HTTPCheck{Method: "POST", URL: srv.URL + "/v1/completions",
			Headers: map[string]string{"Content-Type": "application/json"}}, OutcomeFailure, ": 400"},
		{"connection refused", HTTPCheck{URL: refused}, OutcomeFailure, "GET " + refused + ": connection refused"},
		{"hung up", HTTPCheck{URL: srv.URL + "/hangup"}, OutcomeFailure, "/hangup: connection closed before the answer"},
		{"https, certificate not verified", HTTPCheck{URL: tlsSrv.URL + "/health"}, OutcomeSuccess, "GET " + tlsSrv.URL + "/health: 200"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := probeOnce(t, httpCheck(tc.check), Deps{})
			if r.Outcome != tc.outcome || !strings.Contains(r.Message, tc.msg) {
				t.Fatalf("probe: %s %q, want %s with %q", r.Outcome, r.Message, tc.outcome, tc.msg)
			}
		})
	}
}

// A handler that hangs is cut at the probe's timeout.
func TestProbeHTTP_HangCutAtTimeout(t *testing.T) {
	release := make(chan struct{})
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-release:
		case <-r.Context().Done():
		}
	}))
	t.Cleanup(srv.Close)
	t.Cleanup(func() { close(release) })
	c := httpCheck(HTTPCheck{URL: srv.URL + "/health"})
	c.Interval, c.Timeout, c.FailureThreshold, c.SuccessThreshold = time.Second, 200*time.Millisecond, 1, 1
	r := probeOnce(t, c, Deps{})
	if want := "GET " + srv.URL + "/health: timeout after 200ms"; r.Outcome != OutcomeTimeout || r.Message != want {
		t.Fatalf("probe: %s %q, want timeout %q", r.Outcome, r.Message, want)
	}
	if r.Duration < 200*time.Millisecond {
		t.Fatalf("probe took %s, less than its timeout", r.Duration)
	}
}

// Probes of one instance reuse one keep-alive connection.
func TestProbeHTTP_KeepAlive(t *testing.T) {
	var conns atomic.Int32
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	srv.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			conns.Add(1)
		}
	}
	srv.Start()
	t.Cleanup(srv.Close)
	tr := NewTransport()
	t.Cleanup(tr.CloseIdleConnections)
	c := httpCheck(HTTPCheck{URL: srv.URL + "/health", BodyContains: "ok"})
	c.Role, c.Interval, c.Timeout, c.FailureThreshold, c.SuccessThreshold = RoleLiveness, time.Second, 5*time.Second, 1, 1
	m, err := NewMonitor([]Check{c}, Deps{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	for range 5 {
		if r := runProbe(t.Context(), m.probers[0], c.Timeout); !r.OK() {
			t.Fatalf("probe: %+v", r)
		}
	}
	if n := conns.Load(); n != 1 {
		t.Fatalf("5 probes opened %d connections, want 1", n)
	}
}

func TestProbeTCP(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	accepted := make(chan struct{})
	go func() {
		defer close(accepted)
		if conn, err := ln.Accept(); err == nil {
			conn.Close()
		}
	}()
	addr := ln.Addr().String()
	r := probeOnce(t, Check{Type: TypeTCP, TCP: &TCPCheck{Address: addr}}, Deps{})
	if want := "tcp " + addr + ": connected"; r.Outcome != OutcomeSuccess || r.Message != want {
		t.Fatalf("probe of a listener: %s %q, want success %q", r.Outcome, r.Message, want)
	}
	<-accepted

	refused := freeAddr(t)
	r = probeOnce(t, Check{Type: TypeTCP, TCP: &TCPCheck{Address: refused}}, Deps{})
	if want := "tcp " + refused + ": connection refused"; r.Outcome != OutcomeFailure || r.Message != want {
		t.Fatalf("probe of a closed port: %s %q, want failure %q", r.Outcome, r.Message, want)
	}
}

func TestProbeExec(t *testing.T) {
	for _, tc := range []struct {
		name    string
		code    int
		out     string
		err     error
		outcome Outcome
		msg     string
	}{
		{"exit 0", 0, "model loaded\n", nil, OutcomeSuccess, "exec check --port 8000: exit 0: model loaded"},
		{"exit 3, first non-blank line", 3, "\n  CUDA stream stuck  \nmore\n", nil, OutcomeFailure, "exec check --port 8000: exit 3: CUDA stream stuck"},
		{"no output", 1, "", nil, OutcomeFailure, "exec check --port 8000: exit 1"},
		{"launcher error", -1, "", errors.New("start check: no such file"), OutcomeError, "exec check --port 8000: start check: no such file"},
		{"long line", 1, strings.Repeat("é", 200), nil, OutcomeFailure, "exec check --port 8000: exit 1: " + strings.Repeat("é", 98) + "..."},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var gotArgv []string
			exec := func(_ context.Context, argv []string) (int, []byte, error) {
				gotArgv = argv
				return tc.code, []byte(tc.out), tc.err
			}
			r := probeOnce(t, Check{Type: TypeExec, Exec: &ExecCheck{Argv: []string{"check", "--port", "8000"}}}, Deps{Exec: exec})
			if r.Outcome != tc.outcome || r.Message != tc.msg {
				t.Fatalf("probe: %s %q, want %s %q", r.Outcome, r.Message, tc.outcome, tc.msg)
			}
			if strings.Join(gotArgv, " ") != "check --port 8000" {
				t.Fatalf("Exec got argv %q", gotArgv)
			}
		})
	}
}

// An exec probe gets a context that ends at its timeout.
func TestProbeExec_Timeout(t *testing.T) {
	exec := func(ctx context.Context, _ []string) (int, []byte, error) {
		if _, ok := ctx.Deadline(); !ok {
			return 0, nil, errors.New("no deadline")
		}
		<-ctx.Done()
		return -1, nil, ctx.Err()
	}
	c := Check{Type: TypeExec, Exec: &ExecCheck{Argv: []string{"sleep", "1d"}}, Interval: time.Second,
		Timeout: 50 * time.Millisecond, FailureThreshold: 1, SuccessThreshold: 1}
	r := probeOnce(t, c, Deps{Exec: exec})
	if want := "exec sleep 1d: timeout after 50ms"; r.Outcome != OutcomeTimeout || r.Message != want {
		t.Fatalf("probe: %s %q, want timeout %q", r.Outcome, r.Message, want)
	}
}

// A monitor over real probes leaves no goroutine behind once its channel
// is closed and the transport's idle connections are.
func TestMonitor_RealProbes_NoLeak(t *testing.T) {
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent())
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { io.WriteString(w, "ok") }))
	defer srv.Close()
	tr := NewTransport()
	defer tr.CloseIdleConnections()
	live := httpCheck(HTTPCheck{URL: srv.URL + "/health"})
	live.Role, live.Interval, live.Timeout, live.FailureThreshold, live.SuccessThreshold = RoleLiveness, 10*time.Millisecond, time.Second, 3, 1
	ready := live
	ready.Role = RoleReadiness
	ready.TCP, ready.Type, ready.HTTP = &TCPCheck{Address: srv.Listener.Addr().String()}, TypeTCP, nil
	m, err := NewMonitor([]Check{live, ready}, Deps{Transport: tr})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(t.Context())
	ch := m.Watch(ctx, 1)
	for v := range ch {
		if v.Unhealthy {
			t.Fatalf("unhealthy: %s", v.Message)
		}
		if v.Ready {
			break
		}
	}
	// Wait for a few liveness probes, polling with a deadline.
	for deadline := time.Now().Add(10 * time.Second); m.Stats()[0].Results["success"] < 3; {
		if time.Now().After(deadline) {
			t.Fatalf("liveness probes did not pass: %+v", m.Stats()[0])
		}
		time.Sleep(10 * time.Millisecond)
	}
	cancel()
	for range ch {
	}
}
