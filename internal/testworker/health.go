package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"sync"
	"time"
)

// Answers of the probes, as GET /health words them.
const (
	answerOK        = "ok"
	answerUnhealthy = "unhealthy"
	answerHang      = "hang"
	answerStarting  = "starting" // before -ready-after has passed; not a state of the switch
)

// completionOK is the answer of POST /v1/completions when healthy: the least an OpenAI-style client parses.
const completionOK = `{"choices":[{"text":"x"}]}`

// maxCompletionRequest bounds what POST /v1/completions reads of a request body it ignores anyway.
const maxCompletionRequest = 1 << 20

// serveProbes starts the -http and -grpc servers: at once, or with -listen-after in the background once that delay
// has passed, while the worker goes on.
func (w *worker) serveProbes() {
	h := newHealth(w.o.healthy, w.start.Add(w.o.readyAfter))
	if w.o.listenAfter == 0 {
		w.listenProbes(h)
		return
	}
	go func() {
		time.Sleep(time.Until(w.start.Add(w.o.listenAfter)))
		w.listenProbes(h)
	}()
}

// listenProbes listens on both addresses before it returns, so that a test which has seen the "listening" lines
// can connect.
func (w *worker) listenProbes(h *health) {
	o := w.o
	if o.httpAddr != "" {
		w.serve("http", o.httpAddr, o.addrFile, "listening on ", &http.Server{Handler: h.mux()})
	}
	if o.grpcAddr != "" {
		var protocols http.Protocols
		// Prior-knowledge h2c only, as gRPC speaks it: there is no HTTP/1.1 upgrade dance to support.
		protocols.SetUnencryptedHTTP2(true)
		srv := &http.Server{Handler: newGRPCHealth(h, o.grpcServices), Protocols: &protocols}
		w.serve("grpc", o.grpcAddr, o.grpcAddrFile, "grpc listening on ", srv)
	}
}

// serve listens on addr, writes the address to addrFile if any, prints it after prefix, and serves in the
// background; a server that stops ends the worker with exit 1.
func (w *worker) serve(name, addr, addrFile, prefix string, srv *http.Server) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		fatal(fmt.Errorf("%s: listen on %s: %w", name, addr, err))
	}
	bound := ln.Addr().String()
	if addrFile != "" {
		if err := writeFileAtomic(addrFile, bound); err != nil {
			fatal(err)
		}
	}
	w.print(prefix + bound + "\n")
	srv.ReadHeaderTimeout = 10 * time.Second
	go func() {
		err := srv.Serve(ln)
		fmt.Fprintln(os.Stderr, "testworker: "+name+":", err)
		os.Exit(1)
	}()
}

// health is the switchable state behind every probe.
type health struct {
	// readyAt is the end of -ready-after; probes answer answerStarting before it. Never changes.
	readyAt time.Time

	// mu guards answer and changed.
	mu     sync.Mutex
	answer string // answerOK, answerUnhealthy or answerHang
	// changed is closed, and replaced, whenever answer changes: it releases hanging requests.
	changed chan struct{}
}

func newHealth(healthy bool, readyAt time.Time) *health {
	h := &health{readyAt: readyAt, answer: answerOK, changed: make(chan struct{})}
	if !healthy {
		h.answer = answerUnhealthy
	}
	return h
}

// wait returns the answer to give now: answerStarting before readyAt, whatever the switch says, and after it the
// switch's answer, waiting while that is answerHang until it changes or ctx ends.
func (h *health) wait(ctx context.Context) (string, error) {
	for {
		if time.Now().Before(h.readyAt) {
			return answerStarting, nil
		}
		h.mu.Lock()
		answer, changed := h.answer, h.changed
		h.mu.Unlock()
		if answer != answerHang {
			return answer, nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return "", ctx.Err()
		}
	}
}

func (h *health) mux() *http.ServeMux {
	mux := http.NewServeMux()
	mux.HandleFunc("GET /health", h.get)
	mux.HandleFunc("POST /v1/completions", h.complete)
	for _, a := range []string{answerHang, answerUnhealthy} {
		mux.HandleFunc("POST /"+a, func(rw http.ResponseWriter, _ *http.Request) { h.set(rw, a) })
	}
	mux.HandleFunc("POST /healthy", func(rw http.ResponseWriter, _ *http.Request) { h.set(rw, answerOK) })
	return mux
}

func (h *health) set(rw http.ResponseWriter, answer string) {
	h.mu.Lock()
	if h.answer != answer {
		h.answer = answer
		close(h.changed)
		h.changed = make(chan struct{})
	}
	h.mu.Unlock()
	_, _ = io.WriteString(rw, answer)
}

func (h *health) get(rw http.ResponseWriter, r *http.Request) {
	answer, err := h.wait(r.Context())
	if err != nil {
		return // the client gave up
	}
	if answer != answerOK {
		rw.WriteHeader(http.StatusServiceUnavailable)
	}
	_, _ = io.WriteString(rw, answer)
}

func (h *health) complete(rw http.ResponseWriter, r *http.Request) {
	// Read before answering: a client still sending its prompt could otherwise see a reset instead of the answer.
	_, _ = io.Copy(io.Discard, io.LimitReader(r.Body, maxCompletionRequest))
	answer, err := h.wait(r.Context())
	if err != nil {
		return
	}
	rw.Header().Set("Content-Type", "application/json")
	if answer != answerOK {
		rw.WriteHeader(http.StatusServiceUnavailable)
		_, _ = fmt.Fprintf(rw, `{"error":{"message":%q}}`, answer)
		return
	}
	_, _ = io.WriteString(rw, completionOK)
}
