package cron

import "time"

// EventKind says what happened to a run.
type EventKind string

// The event kinds a Job reports through Options.OnEvent.
const (
	EventStarted EventKind = "started"         // an attempt started; Record has Start and Logs
	EventEnded   EventKind = "ended"           // an attempt ended; Record is complete
	EventSkipped EventKind = "skipped"         // a fire time was skipped under Forbid
	EventMissed  EventKind = "missed"          // fire times were missed; Record.Missed counts them
	EventRetry   EventKind = "retry_scheduled" // a failed attempt will be tried again at RetryAt
)

// Event is one change of a cron task's runs, for the agent to turn into a glmd event and a log line.
type Event struct {
	Kind    EventKind
	Time    time.Time
	Task    string
	Record  Record    // the history record concerned, as written
	RetryAt time.Time // EventRetry: when the next attempt starts
}
