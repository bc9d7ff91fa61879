package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"time"
)

// Backend is what the agent offers the API. The agent implements it; the
// API owns it so that the server is tested with a fake.
type Backend interface {
	// Info describes the running agent.
	Info(ctx context.Context) AgentInfo
	// Status returns one row per instance and one per invalid task.
	Status(ctx context.Context, opts StatusOptions) []InstanceStatus
	// Start starts an instance (-1: every instance of the task) and clears
	// the failed state.
	Start(ctx context.Context, task string, instance int) error
	// Stop stops an instance (-1: all) and returns once it has stopped.
	Stop(ctx context.Context, task string, instance int) error
	// Restart stops, then starts an instance (-1: all).
	Restart(ctx context.Context, task string, instance int) error
	// Reload reads conf_dir again and applies the plan, unless dryRun.
	Reload(ctx context.Context, dryRun bool) (Plan, error)
	// Logs returns the tail of an instance's log, then, with Follow, live
	// data. The reader must end (io.EOF) once ctx ends; the server closes it.
	Logs(ctx context.Context, req LogRequest) (io.ReadCloser, error)
	// RotateLogs rotates the log files of a task ("" = all tasks).
	RotateLogs(ctx context.Context, task string) error
	// Events returns the buffered events and, when follow is set, a channel
	// of the events that come after them; live is closed when ctx ends.
	Events(ctx context.Context, follow bool) (backlog []Event, live <-chan Event, err error)
	// GPUs lists the node's GPUs in index order.
	GPUs(ctx context.Context) []GPUStatus
	// Leader says who holds the scheduler role.
	Leader(ctx context.Context) LeaderInfo
	// Runs returns the run history of a scheduled task, oldest first.
	Runs(ctx context.Context, task string) ([]CronRun, error)
	// RunNow starts a run of a scheduled task now (also while suspended)
	// and returns its ID.
	RunNow(ctx context.Context, task string) (uint64, error)
}

// Errors a Backend wraps so that the API answers with the matching status.
var (
	ErrNotFound = errors.New("not found") // 404: no such task or instance
	ErrConflict = errors.New("conflict")  // 409: not possible in the current state
)

// shutdownGrace bounds how long Serve waits for requests in flight (a stop
// waiting on its grace timeout) once its context has ended.
const shutdownGrace = 5 * time.Second

// Server answers the control API for a Backend.
type Server struct {
	b   Backend
	log *slog.Logger
	mux *http.ServeMux
}

// NewServer returns a server for b. A nil log discards.
func NewServer(b Backend, log *slog.Logger) *Server {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	s := &Server{b: b, log: log, mux: http.NewServeMux()}
	s.route(http.MethodGet, "/v1/info", s.handleInfo)
	s.route(http.MethodGet, "/v1/status", s.handleStatus)
	s.route(http.MethodPost, "/v1/tasks/{task}/{action}", s.handleTaskAction)
	s.route(http.MethodPost, "/v1/reload", s.handleReload)
	s.route(http.MethodGet, "/v1/logs/{task}/{instance}", s.handleLogs)
	s.route(http.MethodPost, "/v1/logs/rotate", s.handleRotate)
	s.route(http.MethodGet, "/v1/events", s.handleEvents)
	s.route(http.MethodGet, "/v1/gpus", s.handleGPUs)
	s.route(http.MethodGet, "/v1/leader", s.handleLeader)
	s.route(http.MethodGet, "/v1/runs/{task}", s.handleRuns)
	s.route(http.MethodPost, "/v1/runs/{task}/start", s.handleRunNow)
	s.mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		writeError(w, http.StatusNotFound, fmt.Sprintf("no such endpoint: %s %s", r.Method, r.URL.Path))
	})
	return s
}

// route registers h for method and pattern, and a JSON 405 for the other
// methods on the same path (the mux's own 405 is plain text).
func (s *Server) route(method, pattern string, h http.HandlerFunc) {
	s.mux.HandleFunc(method+" "+pattern, h)
	s.mux.HandleFunc(pattern, func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Allow", method)
		writeError(w, http.StatusMethodNotAllowed, fmt.Sprintf("method %s not allowed on %s (use %s)", r.Method, r.URL.Path, method))
	})
}

// Handler returns the API's routes, with each request logged at debug level.
func (s *Server) Handler() http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rec := &statusRecorder{ResponseWriter: w}
		s.mux.ServeHTTP(rec, r)
		if rec.status == 0 {
			rec.status = http.StatusOK
		}
		s.log.Debug("api request", "method", r.Method, "path", r.URL.Path, "query", r.URL.RawQuery,
			"status", rec.status, "duration", time.Since(start))
	})
}

// Serve answers requests on l until ctx ends, then shuts down: it stops
// accepting, ends the streams (their contexts derive from ctx) and waits up
// to shutdownGrace for the other requests. It returns nil after a clean stop.
// Serve closes l.
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	srv := &http.Server{
		Handler:           s.Handler(),
		BaseContext:       func(net.Listener) context.Context { return ctx },
		ReadHeaderTimeout: 10 * time.Second,
		ErrorLog:          slog.NewLogLogger(s.log.Handler(), slog.LevelDebug),
	}
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return fmt.Errorf("control api on %s: %w", l.Addr(), err)
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), shutdownGrace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		s.log.Warn("control api: requests still running at shutdown, closing their connections", "err", err)
		_ = srv.Close()
	}
	<-errc // http.ErrServerClosed
	return nil
}

func (s *Server) handleInfo(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Info(r.Context()))
}

func (s *Server) handleStatus(w http.ResponseWriter, r *http.Request) {
	withResources, err := boolParam(r, "resources")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	st := s.b.Status(r.Context(), StatusOptions{Resources: withResources})
	if st == nil {
		st = []InstanceStatus{}
	}
	for i := range st {
		if st[i].GPUs == nil {
			st[i].GPUs = []string{}
		}
	}
	writeJSON(w, http.StatusOK, st)
}

func (s *Server) handleGPUs(w http.ResponseWriter, r *http.Request) {
	gpus := s.b.GPUs(r.Context())
	if gpus == nil {
		gpus = []GPUStatus{}
	}
	for i := range gpus {
		if gpus[i].Holders == nil {
			gpus[i].Holders = []string{}
		}
	}
	writeJSON(w, http.StatusOK, gpus)
}

func (s *Server) handleLeader(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.b.Leader(r.Context()))
}

func (s *Server) handleRuns(w http.ResponseWriter, r *http.Request) {
	runs, err := s.b.Runs(r.Context(), r.PathValue("task"))
	if err != nil {
		s.writeBackendError(w, err)
		return
	}
	if runs == nil {
		runs = []CronRun{}
	}
	writeJSON(w, http.StatusOK, runs)
}

func (s *Server) handleRunNow(w http.ResponseWriter, r *http.Request) {
	id, err := s.b.RunNow(r.Context(), r.PathValue("task"))
	if err != nil {
		s.writeBackendError(w, err)
		return
	}
	writeJSON(w, http.StatusOK, map[string]uint64{"id": id})
}

func (s *Server) handleTaskAction(w http.ResponseWriter, r *http.Request) {
	task, action := r.PathValue("task"), r.PathValue("action")
	var do func(context.Context, string, int) error
	switch action {
	case "start":
		do = s.b.Start
	case "stop":
		do = s.b.Stop
	case "restart":
		do = s.b.Restart
	default:
		writeError(w, http.StatusNotFound, fmt.Sprintf("unknown action %q (want start, stop or restart)", action))
		return
	}
	instance := -1
	if v := r.URL.Query().Get("instance"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < -1 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid instance %q: want a number >= 0, or -1 for all", v))
			return
		}
		instance = n
	}
	if err := do(r.Context(), task, instance); err != nil {
		s.writeBackendError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleReload(w http.ResponseWriter, r *http.Request) {
	dryRun, err := boolParam(r, "dry_run")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	plan, err := s.b.Reload(r.Context(), dryRun)
	if err != nil {
		s.writeBackendError(w, err)
		return
	}
	if plan.Changes == nil {
		plan.Changes = []Change{}
	}
	if plan.Errors == nil {
		plan.Errors = []string{}
	}
	writeJSON(w, http.StatusOK, plan)
}

func (s *Server) handleLogs(w http.ResponseWriter, r *http.Request) {
	req := LogRequest{Task: r.PathValue("task"), Stream: StreamStdout, Lines: DefaultLogLines}
	v := r.PathValue("instance")
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid instance %q: want a number >= 0", v))
		return
	}
	req.Instance = n
	q := r.URL.Query()
	if v := q.Get("stream"); v != "" {
		if v != StreamStdout && v != StreamStderr {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid stream %q: want stdout or stderr", v))
			return
		}
		req.Stream = v
	}
	if v := q.Get("lines"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 0 {
			writeError(w, http.StatusBadRequest, fmt.Sprintf("invalid lines %q: want a number >= 0", v))
			return
		}
		req.Lines = n
	}
	if req.Follow, err = boolParam(r, "follow"); err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}

	rc, err := s.b.Logs(r.Context(), req)
	if err != nil {
		s.writeBackendError(w, err)
		return
	}
	defer rc.Close()
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	w.WriteHeader(http.StatusOK)
	rw := http.NewResponseController(w)
	// Flush at once, so that a follower with an empty tail sees the headers.
	if err := rw.Flush(); err != nil {
		return
	}
	buf := make([]byte, 32*1024)
	for {
		n, rerr := rc.Read(buf)
		if n > 0 {
			if _, err := w.Write(buf[:n]); err != nil {
				return // the client went away
			}
			if err := rw.Flush(); err != nil {
				return
			}
		}
		if rerr != nil {
			if !errors.Is(rerr, io.EOF) && r.Context().Err() == nil {
				// The status line is sent; all we can do is end the stream early.
				s.log.Warn("log stream ended early", "task", req.Task, "instance", req.Instance, "err", rerr)
			}
			return
		}
	}
}

func (s *Server) handleRotate(w http.ResponseWriter, r *http.Request) {
	if err := s.b.RotateLogs(r.Context(), r.URL.Query().Get("task")); err != nil {
		s.writeBackendError(w, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) handleEvents(w http.ResponseWriter, r *http.Request) {
	follow, err := boolParam(r, "follow")
	if err != nil {
		writeError(w, http.StatusBadRequest, err.Error())
		return
	}
	ctx := r.Context()
	backlog, live, err := s.b.Events(ctx, follow)
	if err != nil {
		s.writeBackendError(w, err)
		return
	}
	w.Header().Set("Content-Type", "application/x-ndjson")
	w.WriteHeader(http.StatusOK)
	rw := http.NewResponseController(w)
	enc := json.NewEncoder(w)
	for _, ev := range backlog {
		if err := enc.Encode(ev); err != nil {
			return
		}
	}
	if err := rw.Flush(); err != nil || !follow || live == nil {
		return
	}
	for {
		select {
		case <-ctx.Done():
			return
		case ev, ok := <-live:
			if !ok {
				return
			}
			if err := enc.Encode(ev); err != nil {
				return
			}
			if err := rw.Flush(); err != nil {
				return
			}
		}
	}
}

// writeBackendError answers with the backend's message and the status its
// sentinel asks for.
func (s *Server) writeBackendError(w http.ResponseWriter, err error) {
	code := http.StatusInternalServerError
	switch {
	case errors.Is(err, ErrNotFound):
		code = http.StatusNotFound
	case errors.Is(err, ErrConflict):
		code = http.StatusConflict
	case errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		code = http.StatusServiceUnavailable
	}
	s.log.Debug("api request failed", "status", code, "err", err)
	writeError(w, code, err.Error())
}

// errorBody is the JSON of every error answer.
type errorBody struct {
	Error string `json:"error"`
}

func writeError(w http.ResponseWriter, code int, msg string) {
	writeJSON(w, code, errorBody{Error: msg})
}

func writeJSON(w http.ResponseWriter, code int, v any) {
	body, err := json.Marshal(v)
	if err != nil {
		code = http.StatusInternalServerError
		body, _ = json.Marshal(errorBody{Error: "encode response: " + err.Error()})
	}
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	_, _ = w.Write(append(body, '\n'))
}

// boolParam reads an optional boolean query parameter ("1", "true", "0", ...).
func boolParam(r *http.Request, name string) (bool, error) {
	v := r.URL.Query().Get(name)
	if v == "" {
		return false, nil
	}
	b, err := strconv.ParseBool(v)
	if err != nil {
		return false, fmt.Errorf("invalid %s %q: want 1 or 0", name, v)
	}
	return b, nil
}

// statusRecorder keeps the status code for the request log. Unwrap lets
// http.ResponseController reach the real writer's Flush.
type statusRecorder struct {
	http.ResponseWriter
	status int
}

func (r *statusRecorder) WriteHeader(code int) {
	if r.status == 0 {
		r.status = code
	}
	r.ResponseWriter.WriteHeader(code)
}

func (r *statusRecorder) Write(b []byte) (int, error) {
	if r.status == 0 {
		r.status = http.StatusOK
	}
	return r.ResponseWriter.Write(b)
}

func (r *statusRecorder) Unwrap() http.ResponseWriter { return r.ResponseWriter }
