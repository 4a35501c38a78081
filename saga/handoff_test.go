package saga_test

import (
	"context"
	"log/slog"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// An execution started with a running Runner is leased to it from its
// first commit: Handoff runs it at once, with no claim and no wake-up, and
// no other runner can take it while the lease lasts. If the process dies
// between the commit and the handoff, the lease expires and any runner
// resumes the execution.
func TestHandoff(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		var calls atomic.Int64
		d := &saga.Definition[struct{}]{Name: "handoff", Steps: []saga.Step[struct{}]{
			{Action: saga.Action[struct{}]{Name: "call", Call: func(context.Context, *saga.Run[struct{}]) error { calls.Add(1); return nil }}},
			{Action: saga.Action[struct{}]{Name: "local", Tx: func(context.Context, berth.Tx, *saga.Run[struct{}]) error { return nil }}},
		}}
		a, b := runners(f, d)

		// Not running: Start leaves the execution to claims.
		if x := start(t, f, d, struct{}{}, saga.StartOptions{Runner: a}); x.LeaseOwner != "" {
			t.Fatalf("execution leased to %q by an engine that is not running", x.LeaseOwner)
		}
		stop := run(t, f, a)
		defer stop()
		wait := func(id string) *berth.Execution {
			t.Helper()
			wctx, wcancel := context.WithTimeout(f.ctx, time.Minute)
			defer wcancel()
			x, err := saga.Wait(wctx, f.store, id)
			if err != nil {
				t.Fatalf("Wait %s: %v", id, err)
			}
			return x
		}
		// Run's first claim takes the unleased one; from then on A is running.
		waitUntil(t, "the first execution claimed", func() bool { return calls.Load() == 1 })

		x := start(t, f, d, struct{}{}, saga.StartOptions{Runner: a})
		if x.LeaseOwner != "A" || !x.LeaseUntil.Equal(f.clock.Now().Add(lease)) {
			t.Fatalf("started with lease %q until %v, want A until %v", x.LeaseOwner, x.LeaseUntil, f.clock.Now().Add(lease))
		}
		if n := f.tick(t, b); n != 0 {
			t.Fatalf("B claimed %d executions leased to A", n)
		}
		a.Handoff(f.ctx, x)
		if got := wait(x.ID); got.Status != berth.ExecutionSucceeded {
			t.Fatalf("handed-off execution: %+v", got)
		}
		if got := f.history(t, x.ID); len(got) == 0 || got[len(got)-1] != string(berth.HistExecutionSucceeded) {
			t.Fatalf("history %v", got)
		}

		// Handoff of an execution that is not leased to A wakes the runners.
		y := start(t, f, d, struct{}{}, saga.StartOptions{})
		a.Handoff(f.ctx, y)
		if got := wait(y.ID); got.Status != berth.ExecutionSucceeded {
			t.Fatalf("notified execution: %+v", got)
		}

		// The process "dies" after the commit: no Handoff. B takes the
		// execution over once A's lease has expired, and runs it once.
		z := start(t, f, d, struct{}{}, saga.StartOptions{Runner: a})
		stop()
		before := calls.Load()
		if n := f.tick(t, b); n != 0 {
			t.Fatalf("B claimed %d executions before the lease expired", n)
		}
		f.clock.Advance(lease + time.Second)
		if n := f.tick(t, b); n != 1 {
			t.Fatalf("B claimed %d executions after the lease expired, want 1", n)
		}
		if got := f.get(t, z.ID); got.Status != berth.ExecutionSucceeded {
			t.Fatalf("taken-over execution: %+v", got)
		}
		if n := calls.Load() - before; n != 1 {
			t.Fatalf("the call ran %d times, want 1", n)
		}
	})
}

// A handed-off execution that waited past half its lease for a worker has
// its lease renewed before it runs; if another runner took it over
// meanwhile, the handoff is dropped and the action is not run again.
func TestHandoffStaleLease(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		var calls atomic.Int64
		d := &saga.Definition[struct{}]{Name: "stale", Steps: []saga.Step[struct{}]{
			{Action: saga.Action[struct{}]{Name: "call", Call: func(context.Context, *saga.Run[struct{}]) error { calls.Add(1); return nil }}},
		}}
		a, b := runners(f, d)
		stop := run(t, f, a)
		defer stop()
		first := start(t, f, d, struct{}{}, saga.StartOptions{})
		a.Handoff(f.ctx, first) // not leased: a wake-up
		waitUntil(t, "A running", func() bool { return calls.Load() == 1 })

		// Leased to A, but A "stalls" past the lease: B takes it and runs it.
		x := start(t, f, d, struct{}{}, saga.StartOptions{Runner: a})
		stop()
		f.clock.Advance(lease + time.Second)
		if n := f.tick(t, b); n != 1 {
			t.Fatalf("B claimed %d, want 1", n)
		}
		if calls.Load() != 2 {
			t.Fatalf("calls %d, want 2", calls.Load())
		}
		stop = run(t, f, a)
		defer stop()
		// A's late handoff finds the lease stale, fails to renew it, and
		// does not run the action a second time.
		a.Handoff(f.ctx, x)
		waitUntil(t, "the stale handoff dropped", func() bool { return strings.Contains(f.logs.String(), "lease could not be renewed") })
		if n := calls.Load(); n != 2 {
			t.Fatalf("calls %d, want 2: a stale handoff ran its action again", n)
		}
		if got := f.get(t, x.ID); got.Status != berth.ExecutionSucceeded {
			t.Fatalf("x: %+v", got)
		}
	})
}

// run runs e until the returned stop is called (stop may be called again).
func run(t *testing.T, f *fixture, e *saga.Engine) (stop func()) {
	t.Helper()
	ctx, cancel := context.WithCancel(f.ctx)
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	var once sync.Once
	return func() {
		once.Do(func() {
			cancel()
			if err := <-done; err != nil {
				t.Error(err)
			}
		})
	}
}

// runners returns the engines of the handoff tests, both running d: A,
// which polls once an hour (only its first claim, Notify or Handoff makes
// it run anything) and logs to f.logs, and B, which runs only when ticked.
func runners[S any](f *fixture, d *saga.Definition[S]) (a, b *saga.Engine) {
	a = saga.New(saga.Config{Store: f.store, Clock: f.clock, Owner: "A", Lease: lease, Poll: time.Hour,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
	saga.MustRegister(a, d)
	b = f.engine("B")
	saga.MustRegister(b, d)
	return a, b
}
