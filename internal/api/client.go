package api

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// Client calls the control API of the glmd listening on a Unix socket. Its
// errors are one line for the operator: an unreachable socket says what to
// check, an error answer is the agent's own message (a *StatusError).
// Calls have no timeout of their own; ctx bounds them.
type Client struct {
	socket string
	hc     *http.Client
}

// NewClient returns a client for the agent at socket. Nothing is dialed yet.
func NewClient(socket string) *Client {
	tr := &http.Transport{
		DialContext: func(ctx context.Context, _, _ string) (net.Conn, error) {
			var d net.Dialer
			return d.DialContext(ctx, "unix", socket)
		},
		// glmctl makes one or two calls and exits; idle connections would only
		// leave goroutines behind.
		DisableKeepAlives: true,
	}
	return &Client{socket: socket, hc: &http.Client{Transport: tr}}
}

// StatusError is an error answer of the API: the HTTP status and the
// agent's message. errors.Is matches ErrNotFound for 404 and ErrConflict
// for 409, as on the server side.
type StatusError struct {
	Code    int
	Message string
}

// Error returns the agent's message.
func (e *StatusError) Error() string { return e.Message }

// Is reports whether the status stands for target.
func (e *StatusError) Is(target error) bool {
	switch target {
	case ErrNotFound:
		return e.Code == http.StatusNotFound
	case ErrConflict:
		return e.Code == http.StatusConflict
	}
	return false
}

// Info returns what the agent says about itself.
func (c *Client) Info(ctx context.Context) (AgentInfo, error) {
	var info AgentInfo
	err := c.getJSON(ctx, "/v1/info", nil, &info)
	return info, err
}

// Status returns one row per instance and per invalid task.
func (c *Client) Status(ctx context.Context, opts StatusOptions) ([]InstanceStatus, error) {
	var q url.Values
	if opts.Resources {
		q = url.Values{"resources": {"1"}}
	}
	var st []InstanceStatus
	if err := c.getJSON(ctx, "/v1/status", q, &st); err != nil {
		return nil, err
	}
	return st, nil
}

// GPUs lists the node's GPUs.
func (c *Client) GPUs(ctx context.Context) ([]GPUStatus, error) {
	var gpus []GPUStatus
	if err := c.getJSON(ctx, "/v1/gpus", nil, &gpus); err != nil {
		return nil, err
	}
	return gpus, nil
}

// Leader says who holds the scheduler role.
func (c *Client) Leader(ctx context.Context) (LeaderInfo, error) {
	var l LeaderInfo
	err := c.getJSON(ctx, "/v1/leader", nil, &l)
	return l, err
}

// Runs returns the run history of a scheduled task.
func (c *Client) Runs(ctx context.Context, task string) ([]CronRun, error) {
	var runs []CronRun
	if err := c.getJSON(ctx, "/v1/runs/"+url.PathEscape(task), nil, &runs); err != nil {
		return nil, err
	}
	return runs, nil
}

// RunNow starts a run of a scheduled task now and returns its ID.
func (c *Client) RunNow(ctx context.Context, task string) (uint64, error) {
	var out struct{ ID uint64 }
	err := c.post(ctx, "/v1/runs/"+url.PathEscape(task)+"/start", nil, &out)
	return out.ID, err
}

// Start starts an instance of task (-1: all) and clears its failed state.
func (c *Client) Start(ctx context.Context, task string, instance int) error {
	return c.taskAction(ctx, task, "start", instance)
}

// Stop stops an instance of task (-1: all); it returns once stopped.
func (c *Client) Stop(ctx context.Context, task string, instance int) error {
	return c.taskAction(ctx, task, "stop", instance)
}

// Restart restarts an instance of task (-1: all).
func (c *Client) Restart(ctx context.Context, task string, instance int) error {
	return c.taskAction(ctx, task, "restart", instance)
}

func (c *Client) taskAction(ctx context.Context, task, action string, instance int) error {
	q := url.Values{}
	if instance >= 0 {
		q.Set("instance", strconv.Itoa(instance))
	}
	return c.post(ctx, "/v1/tasks/"+url.PathEscape(task)+"/"+action, q, nil)
}

// Reload asks the agent to read conf_dir again; with dryRun it only
// returns the plan.
func (c *Client) Reload(ctx context.Context, dryRun bool) (Plan, error) {
	q := url.Values{}
	if dryRun {
		q.Set("dry_run", "1")
	}
	var p Plan
	err := c.post(ctx, "/v1/reload", q, &p)
	return p, err
}

// Logs returns an instance's log: the last req.Lines lines, then, with
// req.Follow, new data until ctx ends. The caller closes the reader.
func (c *Client) Logs(ctx context.Context, req LogRequest) (io.ReadCloser, error) {
	q := url.Values{}
	if req.Stream != "" {
		q.Set("stream", req.Stream)
	}
	q.Set("lines", strconv.Itoa(req.Lines))
	if req.Follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/logs/"+url.PathEscape(req.Task)+"/"+strconv.Itoa(req.Instance), q)
	if err != nil {
		return nil, err
	}
	return resp.Body, nil
}

// RotateLogs rotates the log files of task ("" = every task).
func (c *Client) RotateLogs(ctx context.Context, task string) error {
	q := url.Values{}
	if task != "" {
		q.Set("task", task)
	}
	return c.post(ctx, "/v1/logs/rotate", q, nil)
}

// Events calls fn with each buffered event and, when follow is set, with
// each later one until ctx ends or the agent closes the stream. It returns
// nil at the end of the stream, ctx.Err() when ctx ended, or fn's error.
func (c *Client) Events(ctx context.Context, follow bool, fn func(Event) error) error {
	q := url.Values{}
	if follow {
		q.Set("follow", "1")
	}
	resp, err := c.do(ctx, http.MethodGet, "/v1/events", q)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	dec := json.NewDecoder(resp.Body)
	for {
		var ev Event
		if err := dec.Decode(&ev); err != nil {
			if errors.Is(err, io.EOF) {
				return nil
			}
			if ctx.Err() != nil {
				return ctx.Err()
			}
			return fmt.Errorf("read events from glmd at %s: %w", c.socket, err)
		}
		if err := fn(ev); err != nil {
			return err
		}
	}
}

func (c *Client) getJSON(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodGet, path, q)
	if err != nil {
		return err
	}
	return c.decode(resp, v)
}

// post sends a POST and decodes the answer into v, unless v is nil.
func (c *Client) post(ctx context.Context, path string, q url.Values, v any) error {
	resp, err := c.do(ctx, http.MethodPost, path, q)
	if err != nil {
		return err
	}
	if v == nil {
		_ = resp.Body.Close()
		return nil
	}
	return c.decode(resp, v)
}

func (c *Client) decode(resp *http.Response, v any) error {
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		return fmt.Errorf("read answer of glmd at %s: %w", c.socket, err)
	}
	return nil
}

// do sends a request and returns a successful response; an error answer
// becomes a *StatusError, a transport failure an error that says what to do.
func (c *Client) do(ctx context.Context, method, path string, q url.Values) (*http.Response, error) {
	u := "http://glmd" + path
	if len(q) > 0 {
		u += "?" + q.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, fmt.Errorf("build request %s %s: %w", method, path, err)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return nil, c.transportError(ctx, err)
	}
	if resp.StatusCode >= 200 && resp.StatusCode < 300 {
		return resp, nil
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 64<<10))
	var eb errorBody
	msg := ""
	if json.Unmarshal(body, &eb) == nil {
		msg = eb.Error
	}
	if msg == "" {
		msg = strings.TrimSpace(string(body))
	}
	if msg == "" {
		msg = fmt.Sprintf("glmd answered %s %s with %s", method, path, resp.Status)
	}
	return nil, &StatusError{Code: resp.StatusCode, Message: msg}
}

// transportError turns a failed round trip into one line for the operator.
func (c *Client) transportError(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return fmt.Errorf("no answer from glmd at %s: %w", c.socket, ctxErr)
	}
	var opErr *net.OpError
	if errors.As(err, &opErr) && opErr.Op == "dial" {
		hint := "(is glmd running? set --socket or GLMD_SOCKET)"
		if errors.Is(err, fs.ErrPermission) {
			hint = "(are you in the glmd group?)"
		}
		return fmt.Errorf("cannot reach glmd at %s: %w %s", c.socket, opErr.Err, hint)
	}
	var uErr *url.Error
	if errors.As(err, &uErr) {
		err = uErr.Err // drop `Get "http://glmd/v1/status":`, an address nobody typed
	}
	return fmt.Errorf("glmd at %s: %w", c.socket, err)
}
