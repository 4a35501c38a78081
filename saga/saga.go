package saga

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/berthhq/berth"
)

// RetryPolicy says how often and how fast an action is retried after a
// transient (non-business) error. Zero fields take the defaults.
type RetryPolicy struct {
	MaxAttempts int           // total attempts, including the first. Defaults to 5.
	Initial     time.Duration // delay after the first failure. Defaults to 200ms.
	Max         time.Duration // upper bound of a delay. Defaults to 30s.
	Multiplier  float64       // growth per attempt. Defaults to 2.
	Jitter      float64       // ± fraction of randomness. 0 means the default, 0.2; negative turns jitter off.
}

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = 5
	}
	if p.Initial <= 0 {
		p.Initial = 200 * time.Millisecond
	}
	if p.Max <= 0 {
		p.Max = 30 * time.Second
	}
	if p.Multiplier < 1 {
		p.Multiplier = 2
	}
	if p.Jitter < 0 || p.Jitter >= 1 {
		p.Jitter = -1 // off; stays off when the defaults are applied again (Backoff)
	} else if p.Jitter == 0 {
		p.Jitter = 0.2
	}
	return p
}

// Backoff returns the delay before attempt n+1, after n failed attempts (n >= 1).
func (p RetryPolicy) Backoff(n int) time.Duration {
	p = p.withDefaults()
	d := float64(p.Initial)
	for i := 1; i < n && d < float64(p.Max); i++ {
		d *= p.Multiplier
	}
	d = min(d, float64(p.Max))
	if p.Jitter > 0 {
		d *= 1 + p.Jitter*(2*rand.Float64()-1)
	}
	return time.Duration(d)
}

// Run is what an action sees: the execution (read-only) and the saga's
// typed working state, which the action may change.
type Run[S any] struct {
	Execution *berth.Execution
	State     S
}

// Key returns an idempotency key for the outside-world call of the current
// step: the same on every retry, redrive or takeover of this execution.
func (r *Run[S]) Key(action string) string { return r.Execution.ID + ":" + action }

// Failure returns the error that sent the execution compensating ("CODE: message").
func (r *Run[S]) Failure() string { return r.Execution.Error }

// Action is a unit of work of a saga: a forward step or a compensation.
type Action[S any] struct {
	Name string
	// Call runs outside any transaction, for calls to the outside world. It
	// must be idempotent: use Run.Key as the idempotency key.
	Call func(ctx context.Context, r *Run[S]) error
	// Tx runs inside the transaction that records the action's completion,
	// after Call succeeded. Its writes commit exactly once.
	Tx func(ctx context.Context, tx berth.Tx, r *Run[S]) error
	// Retry governs transient failures.
	Retry RetryPolicy
	// Timeout bounds Call. Defaults to 10s.
	Timeout time.Duration
}

// Step is a forward action.
type Step[S any] struct {
	Action[S]
	// Compensate names the compensation at which a failure of this step
	// enters the chain; "" enters at the first.
	Compensate string
	// NoCompensate marks a step past the point of no return: it is retried
	// and then dead-lettered, never compensated, and the deadline no longer
	// applies.
	NoCompensate bool
}

// Definition is a saga: forward steps and a compensation chain.
type Definition[S any] struct {
	Name         string
	Steps        []Step[S]
	Compensation []Action[S]
	// Deadline is the hold time: forward work still pending this long after
	// the start is compensated with a TIMEOUT error. Zero: none.
	Deadline time.Duration
	// MaxConcurrent, if positive, bounds how many executions of this
	// definition one engine runs at once: the others are not claimed (they
	// wait, due, without using an attempt) until one ends or waits. For
	// actions that hold a worker on a slow outside party (webhook
	// deliveries), so that they cannot take every worker.
	MaxConcurrent int
	// Committed, if set, is called after each transaction that advanced an
	// execution of this definition has committed, with the execution as
	// committed (in the engine's goroutine: it must be quick and must not
	// block). For in-process watchers, e.g. a long-poll waiting for the
	// booking the execution is about (Execution.Correlation).
	Committed func(x *berth.Execution)
}

// StartOptions are the optional parts of a new execution.
type StartOptions struct {
	ID          string        // defaults to a new id
	Correlation string        // what it is about, e.g. a booking id
	Deadline    time.Duration // overrides the definition's
	Input       any           // kept verbatim for operators; JSON-encoded
	// Runner, if set and running, takes the new execution's lease at its
	// start, so that Runner.Handoff, called after the commit, runs it at
	// once without a claim. Without Runner (or with a definition that has
	// MaxConcurrent) the execution waits for a claim; Handoff then wakes
	// the runners.
	Runner *Engine
}

// Start creates an execution of d in tx, due now. After the transaction
// commits, call Engine.Handoff (with StartOptions.Runner) or Store.Notify
// to have it run at once.
func (d *Definition[S]) Start(tx berth.Tx, state S, opts StartOptions) (*berth.Execution, error) {
	st, err := json.Marshal(state)
	if err != nil {
		return nil, fmt.Errorf("saga: encode state: %w", err)
	}
	in := json.RawMessage("{}")
	if opts.Input != nil {
		if in, err = json.Marshal(opts.Input); err != nil {
			return nil, fmt.Errorf("saga: encode input: %w", err)
		}
	}
	now := tx.Now()
	x := &berth.Execution{
		ID: opts.ID, Definition: d.Name, Status: berth.ExecutionRunning, Phase: berth.PhaseForward,
		Input: in, State: st, Correlation: opts.Correlation, NextRunAt: now,
	}
	deadline := d.Deadline
	if opts.Deadline != 0 {
		deadline = opts.Deadline
	}
	if deadline > 0 {
		x.Deadline = now.Add(deadline)
	}
	if opts.Runner != nil {
		if owner := opts.Runner.leaseAtStart(d.Name); owner != "" {
			x.LeaseOwner, x.LeaseUntil = owner, now.Add(opts.Runner.cfg.Lease)
		}
	}
	if err := tx.CreateExecution(x); err != nil {
		return nil, err
	}
	if err := tx.AppendHistory(&berth.HistoryEntry{ExecutionID: x.ID, Type: berth.HistExecutionStarted, Detail: d.Name}); err != nil {
		return nil, err
	}
	return x, nil
}

// action is an Action with its state type erased.
type action struct {
	name    string
	call    func(ctx context.Context, x *berth.Execution) (json.RawMessage, error)
	tx      func(ctx context.Context, tx berth.Tx, x *berth.Execution) (json.RawMessage, error)
	retry   RetryPolicy
	timeout time.Duration
	// forward steps only
	compensateAt int
	noCompensate bool
}

// definition is a Definition with its state type erased.
type definition struct {
	name         string
	maxRunning   int                    // Definition.MaxConcurrent
	committed    func(*berth.Execution) // Definition.Committed
	steps        []action
	compensation []action
}

func erase[S any](a Action[S]) action {
	out := action{name: a.Name, retry: a.Retry.withDefaults(), timeout: a.Timeout}
	if out.timeout <= 0 {
		out.timeout = 10 * time.Second
	}
	load := func(x *berth.Execution) (*Run[S], error) {
		r := &Run[S]{Execution: x}
		if len(x.State) > 0 {
			if err := json.Unmarshal(x.State, &r.State); err != nil {
				return nil, fmt.Errorf("saga: decode state of %s: %w", x.ID, err)
			}
		}
		return r, nil
	}
	if a.Call != nil {
		out.call = func(ctx context.Context, x *berth.Execution) (json.RawMessage, error) {
			r, err := load(x)
			if err != nil {
				return nil, err
			}
			if err := a.Call(ctx, r); err != nil {
				return nil, err
			}
			return json.Marshal(r.State)
		}
	}
	if a.Tx != nil {
		out.tx = func(ctx context.Context, tx berth.Tx, x *berth.Execution) (json.RawMessage, error) {
			r, err := load(x)
			if err != nil {
				return nil, err
			}
			if err := a.Tx(ctx, tx, r); err != nil {
				return nil, err
			}
			return json.Marshal(r.State)
		}
	}
	return out
}

func (d *Definition[S]) erase() (*definition, error) {
	if d.Name == "" || len(d.Steps) == 0 {
		return nil, fmt.Errorf("saga: definition needs a name and at least one step")
	}
	out := &definition{name: d.Name, maxRunning: d.MaxConcurrent, committed: d.Committed}
	names := map[string]int{}
	for i, c := range d.Compensation {
		if c.Name == "" || (c.Call == nil && c.Tx == nil) {
			return nil, fmt.Errorf("saga: %s: compensation %d needs a name and a Call or Tx", d.Name, i)
		}
		names[c.Name] = i
		out.compensation = append(out.compensation, erase(c))
	}
	for i, s := range d.Steps {
		if s.Name == "" || (s.Call == nil && s.Tx == nil) {
			return nil, fmt.Errorf("saga: %s: step %d needs a name and a Call or Tx", d.Name, i)
		}
		a := erase(s.Action)
		a.noCompensate = s.NoCompensate
		if s.Compensate != "" {
			at, ok := names[s.Compensate]
			if !ok {
				return nil, fmt.Errorf("saga: %s: step %q compensates at unknown %q", d.Name, s.Name, s.Compensate)
			}
			a.compensateAt = at
		}
		out.steps = append(out.steps, a)
	}
	return out, nil
}
