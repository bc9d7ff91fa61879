// Package apitest provides a fake api.Backend and serves it on a temporary
// Unix socket, for the tests of the API, of glmctl and of their users.
package apitest

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"slices"
	"strings"
	"sync"

	"github.com/open-autoglm/glmd/internal/api"
)

// Backend is a fake api.Backend. It answers with what the test set, records
// every call, and streams the log data and events the test publishes to the
// requests that follow. The zero value is not usable; call NewBackend.
type Backend struct {
	mu        sync.Mutex // guards the fields below; never held while a reader blocks
	info      api.AgentInfo
	status    []api.InstanceStatus
	plan      api.Plan
	errs      map[string]error
	calls     []string
	logs      map[logKey][]byte
	followers map[logKey][]*io.PipeWriter
	events    []api.Event
	subs      map[*subscriber]struct{}
	gpus      []api.GPUStatus
	leader    api.LeaderInfo
	runs      map[string][]api.CronRun
}

type logKey struct {
	task     string
	instance int
	stream   string
}

type subscriber struct {
	ctx context.Context
	ch  chan api.Event
}

var _ api.Backend = (*Backend)(nil)

// NewBackend returns a fake with no tasks.
func NewBackend() *Backend {
	return &Backend{
		errs:      map[string]error{},
		logs:      map[logKey][]byte{},
		followers: map[logKey][]*io.PipeWriter{},
		subs:      map[*subscriber]struct{}{},
	}
}

// SetGPUs sets what GPUs returns.
func (b *Backend) SetGPUs(gpus []api.GPUStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.gpus = gpus
}

// GPUs returns what SetGPUs set.
func (b *Backend) GPUs(context.Context) []api.GPUStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "gpus")
	return slices.Clone(b.gpus)
}

// SetLeader sets what Leader returns.
func (b *Backend) SetLeader(l api.LeaderInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.leader = l
}

// Leader returns what SetLeader set.
func (b *Backend) Leader(context.Context) api.LeaderInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "leader")
	return b.leader
}

// SetRuns sets the run history Runs returns for task.
func (b *Backend) SetRuns(task string, runs []api.CronRun) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if b.runs == nil {
		b.runs = map[string][]api.CronRun{}
	}
	b.runs[task] = runs
}

// Runs returns what SetRuns set, or the error set for "runs".
func (b *Backend) Runs(_ context.Context, task string) ([]api.CronRun, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "runs "+task)
	if err := b.errs["runs"]; err != nil {
		return nil, err
	}
	return slices.Clone(b.runs[task]), nil
}

// RunNow records the call and returns the next ID after task's history,
// or the error set for "run".
func (b *Backend) RunNow(_ context.Context, task string) (uint64, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, "run "+task)
	if err := b.errs["run"]; err != nil {
		return 0, err
	}
	return uint64(len(b.runs[task]) + 1), nil
}

// SetInfo sets what Info returns.
func (b *Backend) SetInfo(info api.AgentInfo) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.info = info
}

// SetStatus sets what Status returns.
func (b *Backend) SetStatus(rows []api.InstanceStatus) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.status = rows
}

// SetPlan sets what Reload returns.
func (b *Backend) SetPlan(p api.Plan) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.plan = p
}

// SetError makes the method (start, stop, restart, reload, logs, rotate,
// events) fail with err; nil makes it succeed again.
func (b *Backend) SetError(method string, err error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.errs[method] = err
}

// Calls returns the calls made so far, one string each, such as
// "stop glm-serve -1" or "reload dry_run=true".
func (b *Backend) Calls() []string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.calls)
}

// WriteLog appends data to an instance's log and sends it to the requests
// that follow that log. It blocks until they have read it.
func (b *Backend) WriteLog(task string, instance int, stream string, data string) {
	k := logKey{task, instance, stream}
	b.mu.Lock()
	b.logs[k] = append(b.logs[k], data...)
	ws := slices.Clone(b.followers[k])
	b.mu.Unlock()
	for _, w := range ws {
		_, _ = w.Write([]byte(data)) // a closed follower fails; it is gone
	}
}

// LogFollowers returns how many requests follow the log.
func (b *Backend) LogFollowers(task string, instance int, stream string) int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.followers[logKey{task, instance, stream}])
}

// Publish gives ev the next sequence number, keeps it in the backlog and
// sends it to the requests that follow events.
func (b *Backend) Publish(ev api.Event) {
	b.mu.Lock()
	defer b.mu.Unlock()
	ev.Seq = uint64(len(b.events) + 1)
	b.events = append(b.events, ev)
	// Sending under mu is safe: the subscriber's channel is closed under mu,
	// and a send gives up once the subscriber's context ends.
	for s := range b.subs {
		select {
		case s.ch <- ev:
		case <-s.ctx.Done():
		}
	}
}

// EventFollowers returns how many requests follow events.
func (b *Backend) EventFollowers() int {
	b.mu.Lock()
	defer b.mu.Unlock()
	return len(b.subs)
}

func (b *Backend) record(method, format string, args ...any) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.calls = append(b.calls, method+" "+fmt.Sprintf(format, args...))
	return b.errs[method]
}

// Info returns what SetInfo set.
func (b *Backend) Info(context.Context) api.AgentInfo {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.info
}

// Status returns a copy of what SetStatus set.
func (b *Backend) Status(context.Context, api.StatusOptions) []api.InstanceStatus {
	b.mu.Lock()
	defer b.mu.Unlock()
	return slices.Clone(b.status)
}

// Start records the call.
func (b *Backend) Start(_ context.Context, task string, instance int) error {
	return b.record("start", "%s %d", task, instance)
}

// Stop records the call.
func (b *Backend) Stop(_ context.Context, task string, instance int) error {
	return b.record("stop", "%s %d", task, instance)
}

// Restart records the call.
func (b *Backend) Restart(_ context.Context, task string, instance int) error {
	return b.record("restart", "%s %d", task, instance)
}

// Reload records the call and returns what SetPlan set.
func (b *Backend) Reload(_ context.Context, dryRun bool) (api.Plan, error) {
	if err := b.record("reload", "dry_run=%t", dryRun); err != nil {
		return api.Plan{}, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.plan, nil
}

// Logs returns the last req.Lines lines written with WriteLog and, with
// req.Follow, what WriteLog writes later, until ctx ends.
func (b *Backend) Logs(ctx context.Context, req api.LogRequest) (io.ReadCloser, error) {
	if err := b.record("logs", "%s %d %s lines=%d follow=%t", req.Task, req.Instance, req.Stream, req.Lines, req.Follow); err != nil {
		return nil, err
	}
	k := logKey{req.Task, req.Instance, req.Stream}
	b.mu.Lock()
	defer b.mu.Unlock()
	tail := bytes.NewReader(lastLines(b.logs[k], req.Lines))
	if !req.Follow {
		return io.NopCloser(tail), nil
	}
	pr, pw := io.Pipe()
	b.followers[k] = append(b.followers[k], pw)
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		b.followers[k] = slices.DeleteFunc(b.followers[k], func(w *io.PipeWriter) bool { return w == pw })
		b.mu.Unlock()
		_ = pw.Close()
	})
	return readCloser{io.MultiReader(tail, pr), pr}, nil
}

type readCloser struct {
	io.Reader
	io.Closer
}

// lastLines returns the last n lines of data.
func lastLines(data []byte, n int) []byte {
	if n <= 0 {
		return nil
	}
	end := len(data)
	if end > 0 && data[end-1] == '\n' {
		end--
	}
	for i := end - 1; i >= 0; i-- {
		if data[i] == '\n' {
			n--
			if n == 0 {
				return slices.Clone(data[i+1:])
			}
		}
	}
	return slices.Clone(data)
}

// RotateLogs records the call.
func (b *Backend) RotateLogs(_ context.Context, task string) error {
	return b.record("rotate", "%s", strings.TrimSpace(task))
}

// Events returns the published events and, with follow, a channel of the
// later ones that is closed when ctx ends.
func (b *Backend) Events(ctx context.Context, follow bool) ([]api.Event, <-chan api.Event, error) {
	if err := b.record("events", "follow=%t", follow); err != nil {
		return nil, nil, err
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	backlog := slices.Clone(b.events)
	if !follow {
		return backlog, nil, nil
	}
	s := &subscriber{ctx: ctx, ch: make(chan api.Event, 16)}
	b.subs[s] = struct{}{}
	context.AfterFunc(ctx, func() {
		b.mu.Lock()
		defer b.mu.Unlock()
		delete(b.subs, s)
		close(s.ch)
	})
	return backlog, s.ch, nil
}
