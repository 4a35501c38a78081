package berth

import (
	"encoding/json"
	"time"
)

// ExecutionStatus is the state of a saga execution. The set is closed.
type ExecutionStatus string

const (
	ExecutionRunning   ExecutionStatus = "RUNNING"   // moving forward or compensating
	ExecutionSucceeded ExecutionStatus = "SUCCEEDED" // every step done
	ExecutionFailed    ExecutionStatus = "FAILED"    // compensated after a failure
	ExecutionDead      ExecutionStatus = "DEAD"      // in the dead-letter queue: needs an operator
)

// ParseExecutionStatus parses a status name from the edge.
func ParseExecutionStatus(s string) (ExecutionStatus, error) {
	switch st := ExecutionStatus(s); st {
	case ExecutionRunning, ExecutionSucceeded, ExecutionFailed, ExecutionDead:
		return st, nil
	}
	return "", Errorf(EINVALID, "unknown execution status %q", truncate(s, 30))
}

// Phase says which way an execution is moving.
type Phase string

const (
	PhaseForward      Phase = "FORWARD"
	PhaseCompensating Phase = "COMPENSATING"
)

// Execution is one run of a saga definition (or a one-step job). It is
// persisted after every step, together with the step's effects.
type Execution struct {
	ID          string
	Definition  string
	Status      ExecutionStatus
	Phase       Phase
	Step        int // index of the next step to run in the current phase
	Attempt     int // attempts already made at the current step
	Input       json.RawMessage
	State       json.RawMessage // the saga's working state, updated by steps
	Error       string          // the failure that sent it compensating or dead: "CODE: message"
	Correlation string          // what it is about (a booking id), for lookups
	NextRunAt   time.Time
	Deadline    time.Time // zero: none. Forward work past it is compensated (hold expiry)
	LeaseOwner  string
	LeaseUntil  time.Time
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// Terminal reports whether the execution has finished (dead counts as not
// finished: it waits for a redrive).
func (x *Execution) Terminal() bool {
	return x.Status == ExecutionSucceeded || x.Status == ExecutionFailed
}

// HistoryType names what happened to an execution.
type HistoryType string

const (
	HistExecutionStarted    HistoryType = "ExecutionStarted"
	HistStateEntered        HistoryType = "StateEntered"
	HistStateSucceeded      HistoryType = "StateSucceeded"
	HistStateFailed         HistoryType = "StateFailed"
	HistStateRetried        HistoryType = "StateRetryScheduled"
	HistCompensationStarted HistoryType = "CompensationStarted"
	HistCompensated         HistoryType = "StateCompensated"
	HistExecutionSucceeded  HistoryType = "ExecutionSucceeded"
	HistExecutionFailed     HistoryType = "ExecutionFailed"
	HistExecutionDead       HistoryType = "ExecutionDeadLettered"
	HistExecutionRedriven   HistoryType = "ExecutionRedriven"
	HistLeaseExpired        HistoryType = "LeaseTakenOver"
)

// HistoryEntry is one line of an execution's append-only history.
type HistoryEntry struct {
	Seq         int64
	ExecutionID string
	Type        HistoryType
	State       string // the step (state) name, "" for execution-level entries
	Attempt     int
	Detail      string
	Error       string
	At          time.Time
}
