package supervisor

import "context"

// Health probes a running instance: the health package implements it from
// the task's [[health]] checks. The runner calls Watch once per process it
// starts and cancels ctx when that process ends or is stopped.
type Health interface {
	// Watch probes the process until ctx ends and sends a Verdict whenever
	// the instance's readiness changes or it must be restarted. The channel
	// is closed once Watch has stopped probing (after ctx ends).
	Watch(ctx context.Context, pid int) <-chan Verdict
}

// Verdict is what the probes concluded.
type Verdict struct {
	// Ready says whether the instance may get work: its startup check (if
	// any) passed and its readiness check (if any) passes.
	Ready bool
	// Unhealthy asks for a restart: the liveness check failed
	// failure_threshold times in a row, or the startup check had not passed
	// when its start_period was over and then failed failure_threshold
	// times in a row (failures within the start period do not count). The
	// runner stops the process and restarts it through the restart policy,
	// with Exit.Reason "unhealthy".
	Unhealthy bool
	// Message explains the verdict for status and events, e.g.
	// "liveness: GET http://127.0.0.1:8000/health: timeout after 2s (3/3)".
	Message string
}
