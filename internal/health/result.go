package health

import "time"

// Outcome classifies one probe. Everything but OutcomeSuccess counts as a
// failure toward the thresholds; the classes are kept apart for metrics, so
// that a fleet can tell a sick worker from a sick probe.
type Outcome string

// Probe outcomes, the values of the "outcome" label.
const (
	// OutcomeSuccess: the instance answered as expected.
	OutcomeSuccess Outcome = "success"
	// OutcomeFailure: the instance answered wrongly or refused (a status
	// out of range, a missing body substring, a non-zero exit, NOT_SERVING,
	// connection refused or reset).
	OutcomeFailure Outcome = "failure"
	// OutcomeTimeout: the probe was cut at its timeout.
	OutcomeTimeout Outcome = "timeout"
	// OutcomeError: the agent could not carry the probe out (the exec
	// launcher failed, a malformed answer to a gRPC call).
	OutcomeError Outcome = "error"
)

// Result is what one probe found.
type Result struct {
	Outcome Outcome
	// Message says what was probed and what came back, e.g.
	// "GET http://127.0.0.1:8000/health: 503".
	Message string
	// Duration is how long the probe took.
	Duration time.Duration
}

// OK says whether the probe passed.
func (r Result) OK() bool { return r.Outcome == OutcomeSuccess }
