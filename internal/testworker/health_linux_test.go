package main

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/open-autoglm/glmd/internal/testenv"
)

// Contract of POST /v1/completions, spelled out here rather than taken from the worker's constants.
const (
	wantCompletion = `{"choices":[{"text":"x"}]}`
	healthPath     = "/grpc.health.v1.Health/Check"
)

// Values of grpc.health.v1.HealthCheckResponse.status; 0 here means "no response message".
const (
	serving    = 1
	notServing = 2
)

var httpClient = &http.Client{Transport: &http.Transport{DisableKeepAlives: true}}

// do sends a request without body and returns the status code and the body.
func do(t *testing.T, ctx context.Context, method, url string) (int, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, url, nil)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := httpClient.Do(req)
	if err != nil {
		return 0, "", err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, string(body), err
}

// mustDo is do for requests that must get an answer, and get it before the deadline: a worker that hangs by
// mistake fails the test rather than running into go test's timeout.
func mustDo(t *testing.T, method, url string) (int, string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	code, body, err := do(t, ctx, method, url)
	if err != nil {
		t.Fatalf("%s %s: %v", method, url, err)
	}
	return code, body
}

// listening reads the next stdout line, which must be prefix and an address, and returns the address.
func (p *proc) listening(prefix string) string {
	p.t.Helper()
	line, _ := p.next()
	addr, ok := strings.CutPrefix(line, prefix)
	if !ok {
		p.t.Fatalf("stdout line %q, want %sADDR; stderr: %s", line, prefix, p.stderr())
	}
	return addr
}

// h2cClient speaks HTTP/2 without TLS, with prior knowledge, as gRPC clients do.
func h2cClient(t *testing.T) *http.Client {
	var protocols http.Protocols
	protocols.SetUnencryptedHTTP2(true)
	tr := &http.Transport{Protocols: &protocols}
	t.Cleanup(tr.CloseIdleConnections)
	return &http.Client{Transport: tr}
}

// grpcResult is how one gRPC call ended.
type grpcResult struct {
	httpCode int
	code     string // grpc-status, from the trailers or, for a trailers-only answer, the headers
	status   int    // HealthCheckResponse.status, 0 without a response message
}

// grpcCall sends HealthCheckRequest{service} to path with contentType, and decodes what comes back. It calls no
// t.Fatal, so that it can run in a goroutine.
func grpcCall(ctx context.Context, client *http.Client, addr, path, contentType, service string) (grpcResult, error) {
	var msg []byte
	if service != "" {
		msg = append([]byte{0x0a}, binary.AppendUvarint(nil, uint64(len(service)))...) // field 1, bytes
		msg = append(msg, service...)
	}
	frame := binary.BigEndian.AppendUint32([]byte{0}, uint32(len(msg)))
	frame = append(frame, msg...)
	req, err := http.NewRequestWithContext(ctx, "POST", "http://"+addr+path, bytes.NewReader(frame))
	if err != nil {
		return grpcResult{}, err
	}
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("TE", "trailers")
	resp, err := client.Do(req)
	if err != nil {
		return grpcResult{}, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body) // trailers arrive with the end of the body
	if err != nil {
		return grpcResult{}, err
	}
	if resp.ProtoMajor != 2 {
		return grpcResult{}, fmt.Errorf("answer in %s, want HTTP/2", resp.Proto)
	}
	r := grpcResult{httpCode: resp.StatusCode, code: resp.Trailer.Get("Grpc-Status")}
	if r.httpCode != 200 {
		return r, nil // no gRPC answer: the body is an HTTP error's text
	}
	if r.code == "" {
		r.code = resp.Header.Get("Grpc-Status")
	}
	switch {
	case len(body) == 0:
	case len(body) == 7 && bytes.Equal(body[:6], []byte{0, 0, 0, 0, 2, 0x08}):
		r.status = int(body[6])
	default:
		return r, fmt.Errorf("response body %x, want one frame of HealthCheckResponse{status}", body)
	}
	return r, nil
}

// grpcCheck calls Check for service and fails the test if there is no gRPC answer.
func grpcCheck(t *testing.T, client *http.Client, addr, service string) grpcResult {
	t.Helper()
	ctx, cancel := context.WithTimeout(t.Context(), deadline)
	defer cancel()
	r, err := grpcCall(ctx, client, addr, healthPath, "application/grpc", service)
	if err != nil || r.httpCode != 200 {
		t.Fatalf("Check(%q) = %+v, %v; want an HTTP 200 gRPC answer", service, r, err)
	}
	return r
}

// freeAddrs returns n distinct loopback addresses no one listens on, for a worker that must not listen yet. The
// ports lie below the kernel's ephemeral range: a port from Listen(":0") could meanwhile become the source port of
// some outgoing connection, and the worker's own listen would then fail. All are held until the last is picked.
func freeAddrs(t *testing.T, n int) []string {
	low := 32768 // the kernel's default start of ip_local_port_range
	if data, err := os.ReadFile("/proc/sys/net/ipv4/ip_local_port_range"); err == nil {
		if f := strings.Fields(string(data)); len(f) == 2 {
			if v, err := strconv.Atoi(f[0]); err == nil {
				low = v
			}
		}
	}
	base := max(1024, low-8192)
	if low-base < 100 {
		t.Fatalf("ephemeral ports start at %d: no room below for fixed ports", low)
	}
	var addrs []string
	for tries := 0; len(addrs) < n; tries++ {
		if tries == 100 {
			t.Fatalf("no free port in %d-%d after %d tries", base, low-1, tries)
		}
		ln, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(base+rand.IntN(low-base))))
		if err != nil {
			continue // taken
		}
		defer ln.Close()
		addrs = append(addrs, ln.Addr().String())
	}
	return addrs
}

func TestWorker_HTTP(t *testing.T) {
	type step struct {
		method, path string
		code         int
		body         string
	}
	get := func(code int, body string) step { return step{"GET", "/health", code, body} }
	complete := func(code int, body string) step { return step{"POST", "/v1/completions", code, body} }
	// A POST answers with what GET will answer from now on.
	post := func(path string) step {
		body := map[string]string{"/healthy": "ok", "/unhealthy": "unhealthy"}[path]
		return step{"POST", path, 200, body}
	}
	tests := []struct {
		name  string
		args  []string
		steps []step
	}{
		{"healthy", nil, []step{
			get(200, "ok"), complete(200, wantCompletion), post("/unhealthy"), get(503, "unhealthy"),
			get(503, "unhealthy"), complete(503, `{"error":{"message":"unhealthy"}}`),
			post("/healthy"), get(200, "ok"), complete(200, wantCompletion),
			{"POST", "/health", 405, ""}, {"GET", "/healthy", 405, ""}, {"GET", "/v1/completions", 405, ""},
		}},
		{"starts unhealthy", []string{"-healthy=false"}, []step{
			get(503, "unhealthy"), complete(503, ""), post("/healthy"), get(200, "ok"), complete(200, wantCompletion),
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrFile := filepath.Join(t.TempDir(), "addr")
			p := start(t, append([]string{"-http", "127.0.0.1:0", "-addr-file", addrFile}, tt.args...))
			addr := p.listening("listening on ")
			if data, err := os.ReadFile(addrFile); err != nil || string(data) != addr {
				t.Errorf("address file holds %q (%v), want %q", data, err, addr)
			}
			for i, s := range tt.steps {
				code, body := mustDo(t, s.method, "http://"+addr+s.path)
				if code != s.code || (s.body != "" && body != s.body) {
					t.Errorf("step %d: %s %s = %d %q, want %d %q", i, s.method, s.path, code, body, s.code, s.body)
				}
			}
		})
	}

	for _, probe := range []struct{ method, path string }{{"GET", "/health"}, {"POST", "/v1/completions"}} {
		t.Run("hang "+probe.path, func(t *testing.T) {
			p := start(t, []string{"-http", "127.0.0.1:0"})
			url := "http://" + p.listening("listening on ")
			mustDo(t, "POST", url+"/hang")
			ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
			defer cancel()
			if code, body, err := do(t, ctx, probe.method, url+probe.path); !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s %s while hanging = %d %q, %v; want the client's deadline",
					probe.method, probe.path, code, body, err)
			}

			// A request hanging when the answer changes gets the new answer.
			type result struct {
				code int
				err  error
			}
			got := make(chan result, 1)
			go func() {
				ctx, cancel := context.WithTimeout(t.Context(), deadline)
				defer cancel()
				code, _, err := do(t, ctx, probe.method, url+probe.path)
				got <- result{code, err}
			}()
			mustDo(t, "POST", url+"/unhealthy")
			select {
			case r := <-got:
				if r.err != nil || r.code != 503 {
					t.Errorf("released %s = %d, %v; want 503", probe.path, r.code, r.err)
				}
			case <-time.After(deadline):
				t.Fatalf("%s still hanging after POST /unhealthy", probe.path)
			}
		})
	}
}

func TestWorker_ReadyAfter(t *testing.T) {
	t.Run("starting", func(t *testing.T) {
		p := start(t, []string{"-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0", "-ready-after", "1h"})
		url := "http://" + p.listening("listening on ")
		grpcAddr := p.listening("grpc listening on ")
		client := h2cClient(t)
		// Before -ready-after the answer is "starting", whatever the switch says, and it never hangs.
		for _, set := range []string{"/healthy", "/hang", "/unhealthy"} {
			mustDo(t, "POST", url+set)
			if code, body := mustDo(t, "GET", url+"/health"); code != 503 || body != "starting" {
				t.Errorf("after POST %s: GET /health = %d %q, want 503 \"starting\"", set, code, body)
			}
			want := `{"error":{"message":"starting"}}`
			if code, body := mustDo(t, "POST", url+"/v1/completions"); code != 503 || body != want {
				t.Errorf("after POST %s: POST /v1/completions = %d %q, want 503 %q", set, code, body, want)
			}
			if r := grpcCheck(t, client, grpcAddr, ""); r.code != "0" || r.status != notServing {
				t.Errorf("after POST %s: Check = %+v, want grpc-status 0, NOT_SERVING", set, r)
			}
		}
	})

	t.Run("ready", func(t *testing.T) {
		const readyAfter = time.Second
		begin := time.Now() // before the worker's own start, from which it counts
		p := start(t, []string{"-http", "127.0.0.1:0", "-ready-after", readyAfter.String()})
		url := "http://" + p.listening("listening on ")
		var answers []string
		testenv.Eventually(t, deadline, func() bool {
			code, body := mustDo(t, "GET", url+"/health")
			answers = append(answers, fmt.Sprintf("%d %s", code, body))
			return code == 200
		}, "GET /health answered %q, want 200 ok at last", &answers)
		if since := time.Since(begin); since < readyAfter {
			t.Errorf("GET /health answered 200 %v after start, before -ready-after %v", since, readyAfter)
		}
		// Every answer before the first 200 must be "starting": no other answer comes first.
		last := len(answers) - 1
		notStarting := func(a string) bool { return a != "503 starting" }
		if answers[last] != "200 ok" || slices.ContainsFunc(answers[:last], notStarting) {
			t.Errorf("GET /health answered %q, want 503 starting until 200 ok", answers)
		}
		// The switch works once ready.
		mustDo(t, "POST", url+"/unhealthy")
		if code, body := mustDo(t, "GET", url+"/health"); code != 503 || body != "unhealthy" {
			t.Errorf("GET /health after POST /unhealthy = %d %q, want 503 unhealthy", code, body)
		}
	})
}

func TestWorker_ListenAfter(t *testing.T) {
	refused := func(t *testing.T, addr string) bool {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err == nil {
			_ = c.Close()
			return false
		}
		if !errors.Is(err, syscall.ECONNREFUSED) {
			t.Fatalf("connect to %s: %v, want connection refused or accepted", addr, err)
		}
		return true
	}

	t.Run("not yet", func(t *testing.T) {
		addrs := freeAddrs(t, 2)
		httpAddr, grpcAddr := addrs[0], addrs[1]
		p := start(t, []string{"-http", httpAddr, "-grpc", grpcAddr, "-listen-after", "1h", "-flood", "100"})
		// The flood comes after the probes in the worker's order: it goes on without them.
		if line, _ := p.next(); line != strings.Repeat("x", 99) {
			t.Fatalf("stdout line %q, want the flood's line; stderr: %s", line, p.stderr())
		}
		for _, addr := range []string{httpAddr, grpcAddr} {
			if !refused(t, addr) {
				t.Errorf("connection to %s accepted before -listen-after", addr)
			}
		}
	})

	t.Run("listening", func(t *testing.T) {
		const listenAfter = time.Second
		addrs := freeAddrs(t, 2)
		httpAddr, grpcAddr := addrs[0], addrs[1]
		begin := time.Now()
		p := start(t, []string{"-http", httpAddr, "-grpc", grpcAddr, "-listen-after", listenAfter.String()})
		testenv.Eventually(t, deadline, func() bool {
			select {
			case <-p.done:
				t.Fatalf("worker ended (%v) before it listened; stderr: %s", p.state, p.stderr())
			default:
			}
			return !refused(t, grpcAddr)
		}, "connections to %s still refused", grpcAddr)
		if since := time.Since(begin); since < listenAfter {
			t.Errorf("connection accepted %v after start, before -listen-after %v", since, listenAfter)
		}
		if got := p.listening("listening on "); got != httpAddr {
			t.Errorf("listening on %s, want %s", got, httpAddr)
		}
		if got := p.listening("grpc listening on "); got != grpcAddr {
			t.Errorf("grpc listening on %s, want %s", got, grpcAddr)
		}
		if code, body := mustDo(t, "GET", "http://"+httpAddr+"/health"); code != 200 || body != "ok" {
			t.Errorf("GET /health = %d %q, want 200 ok", code, body)
		}
		if r := grpcCheck(t, h2cClient(t), grpcAddr, ""); r.code != "0" || r.status != serving {
			t.Errorf("Check = %+v, want grpc-status 0, SERVING", r)
		}
	})
}

func TestWorker_GRPC(t *testing.T) {
	type step struct {
		post    string // POST this path on the -http server first, if any
		service string
		code    string
		status  int
	}
	tests := []struct {
		name     string
		args     []string
		withHTTP bool
		steps    []step
	}{
		{"switch", []string{"-grpc-service", "glm", "-grpc-service", "other"}, true, []step{
			{"", "", "0", serving}, {"", "glm", "0", serving}, {"", "other", "0", serving}, {"", "nope", "5", 0},
			{"/unhealthy", "", "0", notServing}, {"", "glm", "0", notServing}, {"", "nope", "5", 0},
			{"/healthy", "", "0", serving}, {"", "glm", "0", serving},
		}},
		{"alone", nil, false, []step{{"", "", "0", serving}, {"", "glm", "5", 0}}},
		{"alone unhealthy", []string{"-healthy=false"}, false, []step{{"", "", "0", notServing}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addrFile := filepath.Join(t.TempDir(), "addr")
			args := append([]string{"-grpc", "127.0.0.1:0", "-grpc-addr-file", addrFile}, tt.args...)
			if tt.withHTTP {
				args = append(args, "-http", "127.0.0.1:0")
			}
			p := start(t, args)
			var url string
			if tt.withHTTP {
				url = "http://" + p.listening("listening on ")
			}
			addr := p.listening("grpc listening on ")
			if data, err := os.ReadFile(addrFile); err != nil || string(data) != addr {
				t.Errorf("address file holds %q (%v), want %q", data, err, addr)
			}
			client := h2cClient(t)
			for i, s := range tt.steps {
				if s.post != "" {
					mustDo(t, "POST", url+s.post)
				}
				if r := grpcCheck(t, client, addr, s.service); r.code != s.code || r.status != s.status {
					t.Errorf("step %d: Check(%q) = grpc-status %s, status %d; want %s, %d",
						i, s.service, r.code, r.status, s.code, s.status)
				}
			}
		})
	}

	t.Run("hang", func(t *testing.T) {
		p := start(t, []string{"-http", "127.0.0.1:0", "-grpc", "127.0.0.1:0"})
		url := "http://" + p.listening("listening on ")
		addr := p.listening("grpc listening on ")
		client := h2cClient(t)
		mustDo(t, "POST", url+"/hang")
		ctx, cancel := context.WithTimeout(t.Context(), 100*time.Millisecond)
		defer cancel()
		r, err := grpcCall(ctx, client, addr, healthPath, "application/grpc", "")
		if !errors.Is(err, context.DeadlineExceeded) {
			t.Fatalf("Check while hanging = %+v, %v; want the client's deadline", r, err)
		}

		type result struct {
			r   grpcResult
			err error
		}
		got := make(chan result, 1)
		go func() {
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			defer cancel()
			r, err := grpcCall(ctx, client, addr, healthPath, "application/grpc", "")
			got <- result{r, err}
		}()
		mustDo(t, "POST", url+"/unhealthy")
		select {
		case res := <-got:
			if res.err != nil || res.r.code != "0" || res.r.status != notServing {
				t.Errorf("released Check = %+v, %v; want grpc-status 0, NOT_SERVING", res.r, res.err)
			}
		case <-time.After(deadline):
			t.Fatal("Check still hanging after POST /unhealthy")
		}
	})

	t.Run("not a health check", func(t *testing.T) {
		p := start(t, []string{"-grpc", "127.0.0.1:0"})
		addr := p.listening("grpc listening on ")
		client := h2cClient(t)
		tests := []struct {
			name, path, contentType string
			want                    grpcResult
		}{
			{"proto suffix", healthPath, "application/grpc+proto", grpcResult{200, "0", serving}},
			{"other method", "/grpc.health.v1.Health/Watch", "application/grpc", grpcResult{200, "12", 0}},
			{"other service", "/glm.Model/Check", "application/grpc", grpcResult{200, "12", 0}},
			{"not grpc", healthPath, "application/json", grpcResult{415, "", 0}},
		}
		for _, tt := range tests {
			ctx, cancel := context.WithTimeout(t.Context(), deadline)
			r, err := grpcCall(ctx, client, addr, tt.path, tt.contentType, "")
			cancel()
			if err != nil || r != tt.want {
				t.Errorf("%s: POST %s (%s) = %+v, %v; want %+v", tt.name, tt.path, tt.contentType, r, err, tt.want)
			}
		}
	})
}
