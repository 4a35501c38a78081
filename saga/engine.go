package saga

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"maps"
	"os"
	"slices"
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// Config configures an Engine. Zero values take the documented defaults.
type Config struct {
	Store  berth.Store
	Clock  berth.Clock  // defaults to the system clock
	Logger *slog.Logger // defaults to slog.Default()
	// Owner names this runner in leases. Defaults to host-pid-random.
	Owner string
	// Workers is how many executions run at once. Defaults to 64: workers
	// are goroutines, and more executions in flight make bigger group
	// commits on SQLite.
	Workers int
	// Lease is how long a claim lasts without progress; a crashed runner's
	// executions are resumed by others after it. Defaults to 30s.
	Lease time.Duration
	// Poll is how often runners look for due work when nobody wakes them
	// (retries that come due, other processes' work). Defaults to 500ms.
	Poll time.Duration
	// Exclusive says this runner is the only one on the database (SQLite
	// with the data directory locked): leases left by a crashed process are
	// released at start instead of waiting for them to expire.
	Exclusive bool
	// OnStep, if set, is called after every action attempt.
	OnStep func(StepResult)
}

// StepResult describes one finished action attempt, for metrics.
type StepResult struct {
	Definition string
	Step       string
	Phase      berth.Phase
	Outcome    string // "succeeded", "retry", "failed"
	Code       string // error code for retry/failed
	Duration   time.Duration
}

// Engine runs saga executions.
type Engine struct {
	cfg   Config
	mu    sync.RWMutex
	defs  map[string]*definition
	slots chan struct{}
	wg    sync.WaitGroup

	rmu     sync.Mutex
	running map[string]int // executions running now, by definition (for MaxConcurrent)

	// Handoffs (Handoff): executions started leased to this engine, waiting
	// for a worker. hmu guards them and active; wg.Add happens under hmu
	// while active, so that Run's final wg.Wait sees every worker.
	hmu      sync.Mutex
	active   bool // Run is running
	handq    []*berth.Execution
	handWake chan struct{}
}

// New returns an engine; register definitions before calling Run.
func New(cfg Config) *Engine {
	if cfg.Clock == nil {
		cfg.Clock = berth.SystemClock{}
	}
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Owner == "" {
		host, _ := os.Hostname()
		var b [4]byte
		_, _ = rand.Read(b[:])
		cfg.Owner = fmt.Sprintf("%s-%d-%s", host, os.Getpid(), hex.EncodeToString(b[:]))
	}
	if cfg.Workers <= 0 {
		cfg.Workers = 64
	}
	if cfg.Lease <= 0 {
		cfg.Lease = 30 * time.Second
	}
	if cfg.Poll <= 0 {
		cfg.Poll = 500 * time.Millisecond
	}
	return &Engine{cfg: cfg, defs: map[string]*definition{}, slots: make(chan struct{}, cfg.Workers), running: map[string]int{},
		handWake: make(chan struct{}, 1)}
}

// Register adds a definition to the engine.
func Register[S any](e *Engine, d *Definition[S]) error {
	ed, err := d.erase()
	if err != nil {
		return err
	}
	for _, a := range append(append([]action{}, ed.steps...), ed.compensation...) {
		if a.timeout > e.cfg.Lease/2 {
			return fmt.Errorf("saga: %s: %s timeout %s exceeds half the lease %s", d.Name, a.name, a.timeout, e.cfg.Lease)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	if _, dup := e.defs[d.Name]; dup {
		return fmt.Errorf("saga: definition %q registered twice", d.Name)
	}
	e.defs[d.Name] = ed
	return nil
}

// MustRegister is Register that panics on a programming error.
func MustRegister[S any](e *Engine, d *Definition[S]) {
	if err := Register(e, d); err != nil {
		panic(err)
	}
}

// Exclusive reports whether this engine is the only runner on its
// database (Config.Exclusive): then every execution advances in this
// process, and Definition.Committed sees every commit.
func (e *Engine) Exclusive() bool { return e.cfg.Exclusive }

// Owner returns the runner's lease owner name.
func (e *Engine) Owner() string { return e.cfg.Owner }

// Run claims and runs due executions until ctx is done, then waits for the
// executions in flight to reach a committed point.
func (e *Engine) Run(ctx context.Context) error {
	if e.cfg.Exclusive {
		var n int
		if err := e.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) { n, err = tx.ReleaseLeases(); return err }); err != nil {
			return fmt.Errorf("saga: release leases: %w", err)
		}
		if n > 0 {
			e.cfg.Logger.Info("resuming executions of a previous run", "count", n)
		}
	}
	wake := e.cfg.Store.Wakeups()
	timer := time.NewTimer(0)
	defer timer.Stop()
	e.hmu.Lock()
	e.active = true
	e.hmu.Unlock()
	defer e.wg.Wait()
	defer func() {
		e.hmu.Lock()
		e.active = false
		e.hmu.Unlock()
	}()
	for {
		e.runHandoffs(ctx)
		claimed, err := e.dispatch(ctx)
		if err != nil && ctx.Err() == nil {
			e.cfg.Logger.Error("claiming executions failed", "err", err)
		}
		if claimed > 0 {
			// There may be more due work: claim it as workers free up
			// (dispatch waits for one) instead of sleeping until the poll.
			continue
		}
		timer.Reset(e.cfg.Poll)
		select {
		case <-ctx.Done():
			return nil
		case <-wake:
		case <-e.handWake:
		case <-timer.C:
		}
	}
}

// leaseAtStart returns the lease a new execution of d takes at its start so
// that this engine runs it without a claim (Handoff), or "" when it is left
// to claims: the engine is not running, or d limits its concurrency.
func (e *Engine) leaseAtStart(name string) string {
	e.mu.RLock()
	d := e.defs[name]
	e.mu.RUnlock()
	if d == nil {
		return ""
	}
	e.hmu.Lock()
	defer e.hmu.Unlock()
	if !e.active || d.maxRunning > 0 {
		return ""
	}
	return e.cfg.Owner
}

// Handoff runs x at once in this engine, without a claim, if Start leased
// it to this engine (StartOptions.Runner), and otherwise wakes the runners
// (Store.Notify). Call it after the transaction that started x committed.
// A handed-off execution waits for a free worker ahead of claimed work; if
// this process stops first, its lease expires (or, on SQLite, is released
// at the next start) and any runner resumes it.
func (e *Engine) Handoff(ctx context.Context, x *berth.Execution) {
	if x == nil {
		return
	}
	if x.LeaseOwner != e.cfg.Owner {
		e.cfg.Store.Notify(ctx)
		return
	}
	c := *x // the caller keeps x
	e.hmu.Lock()
	e.handq = append(e.handq, &c)
	e.hmu.Unlock()
	select {
	case e.handWake <- struct{}{}:
	default:
	}
}

func (e *Engine) handoffsWaiting() bool {
	e.hmu.Lock()
	defer e.hmu.Unlock()
	return len(e.handq) > 0
}

// runHandoffs starts the handed-off executions, as many as there are free
// workers (the rest wait for the next round).
func (e *Engine) runHandoffs(ctx context.Context) {
	for {
		e.hmu.Lock()
		if len(e.handq) == 0 || !e.active {
			e.hmu.Unlock()
			return
		}
		select {
		case e.slots <- struct{}{}:
		default:
			e.hmu.Unlock()
			return
		}
		x := e.handq[0]
		e.handq[0] = nil
		e.handq = e.handq[1:]
		e.wg.Add(1)
		e.hmu.Unlock()
		e.launch(ctx, x)
	}
}

// launch runs x in a goroutine on a worker slot the caller took, after
// e.wg.Add(1); the goroutine gives both back. An execution that waited
// past half its lease (a handoff queued behind a backlog) renews it first.
func (e *Engine) launch(ctx context.Context, x *berth.Execution) {
	e.started(x.Definition, 1)
	go func() {
		defer e.wg.Done()
		defer func() { <-e.slots }()
		defer e.started(x.Definition, -1)
		pctx := context.WithoutCancel(ctx)
		if !e.renewStale(pctx, x) {
			return
		}
		e.process(pctx, x)
	}()
}

// renewStale renews the lease of a handed-off execution that waited so
// long for a worker that half its lease is gone, so that no other runner
// can claim it while its next action runs. It reports whether x is still
// this engine's (the renewal fails if another runner took it meanwhile).
func (e *Engine) renewStale(ctx context.Context, x *berth.Execution) bool {
	if e.cfg.Clock.Now().Before(x.LeaseUntil.Add(-e.cfg.Lease / 2)) {
		return true
	}
	err := e.commit(ctx, x, mutation(func(n *berth.Execution, h *history) { e.lease(n, h.at) }))
	if err != nil {
		e.cfg.Logger.Warn("handed-off execution not run: its lease could not be renewed", "execution_id", x.ID, "err", err)
		return false
	}
	return true
}

// dispatch claims as many due executions as there are free workers and
// starts them. It returns how many it claimed.
func (e *Engine) dispatch(ctx context.Context) (int, error) {
	free := cap(e.slots) - len(e.slots)
	if free == 0 {
		// Wait for a worker to finish before claiming more.
		select {
		case e.slots <- struct{}{}:
			<-e.slots
		case <-ctx.Done():
			return 0, nil
		}
		if e.handoffsWaiting() {
			return 1, nil // the freed worker goes to a handoff first: Run loops
		}
		free = 1
	}
	claims := e.claims(free)
	var xs []*berth.Execution
	err := e.cfg.Store.Update(ctx, func(tx berth.Tx) error {
		xs = xs[:0]
		for _, c := range claims {
			c.Limit = min(c.Limit, free-len(xs))
			got, err := tx.ClaimExecutions(c)
			if err != nil {
				return err
			}
			xs = append(xs, got...)
		}
		return nil
	})
	if err != nil {
		return 0, err
	}
	for _, x := range xs {
		e.slots <- struct{}{}
		e.wg.Add(1)
		e.launch(ctx, x)
	}
	return len(xs), nil
}

// claims returns what dispatch claims for free workers: due executions of
// any definition without MaxConcurrent, and of each that has one, as many
// as it has room for.
func (e *Engine) claims(free int) []berth.Claim {
	rest := berth.Claim{Owner: e.cfg.Owner, Lease: e.cfg.Lease, Limit: free}
	var limited []berth.Claim
	e.mu.RLock()
	defer e.mu.RUnlock()
	e.rmu.Lock()
	defer e.rmu.Unlock()
	for _, name := range slices.Sorted(maps.Keys(e.defs)) { // one SQL text per set
		d := e.defs[name]
		if d.maxRunning <= 0 {
			continue
		}
		rest.Except = append(rest.Except, name)
		if room := d.maxRunning - e.running[name]; room > 0 {
			limited = append(limited, berth.Claim{Owner: e.cfg.Owner, Lease: e.cfg.Lease, Limit: room, Definitions: []string{name}})
		}
	}
	return append([]berth.Claim{rest}, limited...)
}

// started counts executions of definition starting (+1) or ending (-1).
func (e *Engine) started(definition string, n int) {
	e.rmu.Lock()
	e.running[definition] += n
	e.rmu.Unlock()
}

// Tick claims and runs every due execution to its next wait, synchronously.
// Tests use it with a fake clock. It returns how many it ran.
func (e *Engine) Tick(ctx context.Context) (int, error) {
	total := 0
	for {
		var xs []*berth.Execution
		err := e.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
			xs, err = tx.ClaimExecutions(berth.Claim{Owner: e.cfg.Owner, Lease: e.cfg.Lease, Limit: 100})
			return err
		})
		if err != nil || len(xs) == 0 {
			return total, err
		}
		for _, x := range xs {
			e.process(ctx, x)
		}
		total += len(xs)
	}
}

var errLeaseLost = errors.New("saga: lease lost")

// process runs x, which this runner has leased, until it ends, waits for a
// retry, or the lease is lost.
func (e *Engine) process(ctx context.Context, x *berth.Execution) {
	log := e.cfg.Logger.With("execution_id", x.ID, "definition", x.Definition, "correlation", x.Correlation)
	e.mu.RLock()
	d := e.defs[x.Definition]
	e.mu.RUnlock()
	if d == nil {
		err := e.commit(ctx, x, mutation(func(n *berth.Execution, h *history) {
			n.Status, n.Error, n.LeaseOwner, n.LeaseUntil = berth.ExecutionDead, "INTERNAL: unknown saga definition "+x.Definition, "", time.Time{}
			h.add(berth.HistExecutionDead, "", 0, "", n.Error)
		}))
		if err != nil {
			log.Error("could not dead-letter an execution of an unknown definition", "err", err)
		} else {
			log.Error("execution of an unknown definition dead-lettered")
		}
		return
	}
	for x.Status == berth.ExecutionRunning {
		next, err := e.step(ctx, d, x)
		if err != nil {
			if !errors.Is(err, errLeaseLost) {
				log.Error("saga step could not be recorded", "err", err)
			} else {
				log.Warn("lease lost; another runner has the execution")
			}
			return
		}
		x = next
		if d.committed != nil {
			d.committed(x)
		}
		if x.LeaseOwner != e.cfg.Owner {
			return // waiting for a retry
		}
	}
}

// history collects entries to append in the transaction that commits them.
type history struct {
	id      string
	at      time.Time
	entries []*berth.HistoryEntry
}

func (h *history) add(t berth.HistoryType, state string, attempt int, detail, errText string) {
	h.addAt(h.at, t, state, attempt, detail, errText)
}

func (h *history) addAt(at time.Time, t berth.HistoryType, state string, attempt int, detail, errText string) {
	h.entries = append(h.entries, &berth.HistoryEntry{ExecutionID: h.id, Type: t, State: state, Attempt: attempt, Detail: detail, Error: errText, At: at})
}

// commit runs change on a copy of x in one transaction and writes the
// copy, with the history entries change added. It returns errLeaseLost if
// another runner changed the execution meanwhile.
func (e *Engine) commit(ctx context.Context, x *berth.Execution, change func(tx berth.Tx, n *berth.Execution, h *history) error) error {
	var out berth.Execution
	err := e.cfg.Store.Update(ctx, func(tx berth.Tx) error {
		n := *x
		h := &history{id: x.ID, at: tx.Now()}
		if err := change(tx, &n, h); err != nil {
			return err
		}
		if err := tx.UpdateExecution(&n); err != nil {
			if berth.ErrorCode(err) == berth.ECONFLICT {
				return errLeaseLost
			}
			return err
		}
		if err := tx.AppendHistory(h.entries...); err != nil {
			return err
		}
		out = n
		return nil
	})
	if err != nil {
		return err
	}
	*x = out
	return nil
}

// mutation adapts a change that only edits the execution to commit.
func mutation(mutate func(n *berth.Execution, h *history)) func(berth.Tx, *berth.Execution, *history) error {
	return func(_ berth.Tx, n *berth.Execution, h *history) error {
		mutate(n, h)
		return nil
	}
}

// current returns the action x is at, or nil when the phase is complete.
func current(d *definition, x *berth.Execution) *action {
	list := d.steps
	if x.Phase == berth.PhaseCompensating {
		list = d.compensation
	}
	if x.Step < len(list) {
		return &list[x.Step]
	}
	return nil
}

func errText(err error) string {
	return berth.ErrorCode(err) + ": " + berth.ErrorMessage(err)
}

// maxFused bounds how many actions one transaction runs.
const maxFused = 16

// step performs one action of x (or a phase transition) and commits it.
// The local actions that follow it (Tx without Call), and the end of the
// phase, are run in the same transaction, each inside a savepoint: the
// result is the one of running them one by one, with one commit instead of
// one per action.
func (e *Engine) step(ctx context.Context, d *definition, x *berth.Execution) (*berth.Execution, error) {
	now := e.cfg.Clock.Now()
	a := current(d, x)

	// Phase complete: finish.
	if a == nil {
		return x, e.commit(ctx, x, mutation(e.finish))
	}

	// The hold expired before the point of no return: compensate.
	if expired(a, x, now) {
		err := e.commit(ctx, x, mutation(func(n *berth.Execution, h *history) {
			n.Error = berth.ETIMEOUT + ": the hold expired before the booking completed"
			h.add(berth.HistStateFailed, a.name, n.Attempt, "deadline passed", n.Error)
			e.startCompensation(n, h, a)
			e.lease(n, h.at)
		}))
		return x, err
	}

	started := now
	state := x.State
	var err error
	if a.call != nil {
		cctx, cancel := context.WithTimeout(ctx, a.timeout)
		state, err = safeCall(cctx, a, x)
		if err != nil && errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil {
			err = berth.Errorf(berth.ETIMEOUT, "%s timed out after %s", a.name, a.timeout)
		}
		cancel()
		if err == nil {
			state = append([]byte(nil), state...)
		}
	}
	if err == nil {
		var done []fused
		err = e.commit(ctx, x, func(tx berth.Tx, n *berth.Execution, h *history) error {
			done = done[:0]
			n.State = state
			if err := e.apply(ctx, tx, a, n, h, started); err != nil {
				return err
			}
			done = append(done, fused{a: a, phase: n.Phase, started: started})
			return e.fuse(ctx, tx, d, n, h, &done)
		})
		if err == nil {
			for _, f := range done {
				e.observe(d, f.phase, f.a, f.outcome, f.code, f.started)
			}
			return x, nil
		}
		if errors.Is(err, errLeaseLost) {
			return x, err
		}
	}

	// The action failed: retry, compensate or dead-letter.
	outcome := e.outcome(ctx, a, x.Attempt+1, err)
	e.observe(d, x.Phase, a, outcome, berth.ErrorCode(err), started)
	if berth.ErrorCode(err) == berth.EINTERNAL {
		e.cfg.Logger.Warn("saga action failed", "execution_id", x.ID, "state", a.name, "attempt", x.Attempt+1, "err", err)
	}
	cerr := e.commit(ctx, x, mutation(func(n *berth.Execution, h *history) {
		e.fail(ctx, a, n, h, started, err)
	}))
	return x, cerr
}

// fused is an action run by one step's transaction, for metrics.
type fused struct {
	a             *action
	phase         berth.Phase
	outcome, code string
	started       time.Time
}

// fuse runs, in tx, the local actions that follow the one just applied to
// n, until one needs the outside world (a Call), the phase ends (then it
// finishes it), the hold expires, or an action fails (then its failure is
// recorded as a separate step would record it).
func (e *Engine) fuse(ctx context.Context, tx berth.Tx, d *definition, n *berth.Execution, h *history, done *[]fused) error {
	(*done)[0].outcome = "succeeded"
	for range maxFused {
		b := current(d, n)
		if b == nil {
			e.finish(n, h)
			return nil
		}
		if b.call != nil || b.tx == nil || expired(b, n, h.at) {
			return nil
		}
		var bErr error
		err := tx.Savepoint(func() error {
			bErr = e.apply(ctx, tx, b, n, h, h.at)
			return bErr
		})
		if err == nil {
			*done = append(*done, fused{a: b, phase: n.Phase, outcome: "succeeded", started: h.at})
			continue
		}
		if err != bErr {
			return err // the savepoint could not be undone: nothing commits
		}
		if errors.Is(err, errLeaseLost) || !isCoded(err) {
			// Not the action's verdict (the database's trouble): leave the
			// action to a step of its own.
			return nil
		}
		outcome := e.outcome(ctx, b, n.Attempt+1, err)
		*done = append(*done, fused{a: b, phase: n.Phase, outcome: outcome, code: berth.ErrorCode(err), started: h.at})
		phase := n.Phase
		e.fail(ctx, b, n, h, h.at, err)
		if phase == n.Phase || n.Status != berth.ExecutionRunning {
			return nil // a retry later, or dead
		}
		// The compensation started: its local actions follow at once.
	}
	return nil
}

// isCoded reports whether err carries a berth error code of its own.
func isCoded(err error) bool {
	var be *berth.Error
	return errors.As(err, &be)
}

// apply runs a's Tx (if any) on n in tx and records a's success.
func (e *Engine) apply(ctx context.Context, tx berth.Tx, a *action, n *berth.Execution, h *history, started time.Time) error {
	if a.tx != nil {
		in := *n
		st, err := safeTx(ctx, a, tx, &in)
		if err != nil {
			return err
		}
		n.State = st
	}
	h.addAt(started, berth.HistStateEntered, a.name, n.Attempt+1, "", "")
	done := berth.HistStateSucceeded
	if n.Phase == berth.PhaseCompensating {
		done = berth.HistCompensated
	}
	h.add(done, a.name, n.Attempt+1, "", "")
	n.Step++
	n.Attempt = 0
	n.NextRunAt = h.at
	e.lease(n, h.at)
	return nil
}

// outcome classifies a failed attempt for metrics: "retry" or "failed".
func (e *Engine) outcome(ctx context.Context, a *action, attempt int, err error) string {
	if e.exhausted(ctx, a, attempt, err) {
		return "failed"
	}
	return "retry"
}

func (e *Engine) exhausted(ctx context.Context, a *action, attempt int, err error) bool {
	business := berth.IsBusiness(err) || ctx.Err() == nil && errors.Is(err, errPermanent)
	return business || attempt >= a.retry.MaxAttempts
}

// fail records a failed attempt of a on n: a retry later, the start of
// the compensation, or the dead-letter queue.
func (e *Engine) fail(ctx context.Context, a *action, n *berth.Execution, h *history, started time.Time, err error) {
	attempt := n.Attempt + 1
	h.addAt(started, berth.HistStateEntered, a.name, attempt, "", "")
	switch {
	case !e.exhausted(ctx, a, attempt, err):
		delay := a.retry.Backoff(attempt)
		h.add(berth.HistStateRetried, a.name, attempt, "retry in "+delay.Round(time.Millisecond).String(), errText(err))
		n.Attempt = attempt
		n.NextRunAt = h.at.Add(delay)
		if n.Phase == berth.PhaseForward && !a.noCompensate && !n.Deadline.IsZero() && n.NextRunAt.After(n.Deadline) {
			n.NextRunAt = n.Deadline.Add(time.Millisecond) // compensate as soon as the hold expires
		}
		n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	case n.Phase == berth.PhaseForward && !a.noCompensate:
		n.Error = errText(err)
		h.add(berth.HistStateFailed, a.name, attempt, "", n.Error)
		e.startCompensation(n, h, a)
		e.lease(n, h.at)
	default:
		n.Error = errText(err)
		h.add(berth.HistStateFailed, a.name, attempt, "", n.Error)
		h.add(berth.HistExecutionDead, a.name, attempt, "needs an operator: fix the cause, then redrive", n.Error)
		n.Status = berth.ExecutionDead
		n.Attempt = attempt
		n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	}
}

// finish ends an execution whose phase is complete.
func (e *Engine) finish(n *berth.Execution, h *history) {
	n.LeaseOwner, n.LeaseUntil = "", time.Time{}
	if n.Phase == berth.PhaseForward {
		n.Status = berth.ExecutionSucceeded
		h.add(berth.HistExecutionSucceeded, "", 0, "", "")
	} else {
		n.Status = berth.ExecutionFailed
		h.add(berth.HistExecutionFailed, "", 0, "", n.Error)
	}
}

// expired reports whether x's hold expired before a, a step that can still
// be compensated.
func expired(a *action, x *berth.Execution, now time.Time) bool {
	return x.Phase == berth.PhaseForward && !a.noCompensate && !x.Deadline.IsZero() && now.After(x.Deadline)
}

func (e *Engine) lease(n *berth.Execution, at time.Time) { n.LeaseUntil = at.Add(e.cfg.Lease) }

func (e *Engine) startCompensation(n *berth.Execution, h *history, failed *action) {
	n.Phase = berth.PhaseCompensating
	n.Step = failed.compensateAt
	n.Attempt = 0
	n.NextRunAt = h.at
	h.add(berth.HistCompensationStarted, "", 0, "", n.Error)
}

func (e *Engine) observe(d *definition, phase berth.Phase, a *action, outcome, code string, started time.Time) {
	if e.cfg.OnStep != nil {
		e.cfg.OnStep(StepResult{Definition: d.name, Step: a.name, Phase: phase, Outcome: outcome, Code: code, Duration: e.cfg.Clock.Now().Sub(started)})
	}
}

// errPermanent marks an error that must not be retried.
var errPermanent = errors.New("permanent")

// Permanent wraps err so that the engine does not retry it.
func Permanent(err error) error { return fmt.Errorf("%w: %w", errPermanent, err) }

// safeCall runs a's Call, turning a panic into an error.
func safeCall(ctx context.Context, a *action, x *berth.Execution) (st []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("saga: %s panicked: %v", a.name, p)
		}
	}()
	return a.call(ctx, x)
}

func safeTx(ctx context.Context, a *action, tx berth.Tx, x *berth.Execution) (st []byte, err error) {
	defer func() {
		if p := recover(); p != nil {
			err = fmt.Errorf("saga: %s panicked: %v", a.name, p)
		}
	}()
	return a.tx(ctx, tx, x)
}

// Redrive puts a dead execution back to work where it stopped, with fresh
// attempts. Returns NOT_FOUND if there is no such execution and CONFLICT if
// it is not dead. Call Store.Notify afterwards to wake a runner.
func Redrive(ctx context.Context, s berth.Store, id string) (*berth.Execution, error) {
	var x *berth.Execution
	err := s.Update(ctx, func(tx berth.Tx) (err error) {
		if x, err = tx.GetExecution(id); err != nil {
			return err
		}
		if x.Status != berth.ExecutionDead {
			return berth.Errorf(berth.ECONFLICT, "execution %s is %s, not DEAD", id, x.Status)
		}
		x.Status, x.Attempt, x.NextRunAt = berth.ExecutionRunning, 0, tx.Now()
		x.LeaseOwner, x.LeaseUntil = "", time.Time{}
		x.Deadline = time.Time{} // an operator chose to finish it; the hold no longer applies
		if err := tx.UpdateExecution(x); err != nil {
			return err
		}
		return tx.AppendHistory(&berth.HistoryEntry{ExecutionID: id, Type: berth.HistExecutionRedriven, Detail: "resumed at step " + fmt.Sprint(x.Step) + " (" + string(x.Phase) + ")"})
	})
	if err != nil {
		return nil, err
	}
	s.Notify(ctx)
	return x, nil
}

// Wait polls until execution id is terminal or dead, or ctx is done.
func Wait(ctx context.Context, s berth.Store, id string) (*berth.Execution, error) {
	delay := 5 * time.Millisecond
	for {
		var x *berth.Execution
		if err := s.View(ctx, func(tx berth.Tx) (err error) { x, err = tx.GetExecution(id); return err }); err != nil {
			return nil, err
		}
		if x.Status != berth.ExecutionRunning {
			return x, nil
		}
		select {
		case <-ctx.Done():
			return x, ctx.Err()
		case <-time.After(delay):
		}
		delay = min(2*delay, 100*time.Millisecond)
	}
}
