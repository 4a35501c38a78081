package saga_test

import (
	"context"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// MaxConcurrent bounds the executions of a definition that an engine runs
// at once; the others wait without using an attempt, and other
// definitions' executions are not held up behind them.
func TestMaxConcurrent(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setupClock(t, dialect, berth.SystemClock{})
		var now, most atomic.Int64
		release := make(chan struct{})
		slow := &saga.Definition[struct{}]{Name: "slow", MaxConcurrent: 2, Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{
			Name: "wait", Retry: saga.RetryPolicy{MaxAttempts: 1},
			Call: func(ctx context.Context, _ *saga.Run[struct{}]) error {
				n := now.Add(1)
				defer now.Add(-1)
				for m := most.Load(); n > m && !most.CompareAndSwap(m, n); m = most.Load() {
				}
				select {
				case <-release:
					return nil
				case <-ctx.Done():
					return ctx.Err()
				}
			}}}}}
		fast := &saga.Definition[struct{}]{Name: "fast", Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{
			Name: "noop", Tx: func(context.Context, berth.Tx, *saga.Run[struct{}]) error { return nil }}}}}
		e := saga.New(saga.Config{Store: f.store, Workers: 8, Poll: 10 * time.Millisecond, Lease: lease})
		saga.MustRegister(e, slow)
		saga.MustRegister(e, fast)
		var slowIDs, fastIDs []string
		for range 10 {
			slowIDs = append(slowIDs, start(t, f, slow, struct{}{}, saga.StartOptions{}).ID)
		}
		ctx, cancel := context.WithCancel(context.Background())
		done := make(chan struct{})
		go func() { _ = e.Run(ctx); close(done) }()
		defer func() { cancel(); <-done }()

		// Two slow ones run and hold their workers; the fast ones started
		// meanwhile still finish.
		waitUntil(t, "two slow executions running", func() bool { return now.Load() == 2 })
		for range 5 {
			fastIDs = append(fastIDs, start(t, f, fast, struct{}{}, saga.StartOptions{}).ID)
		}
		f.store.Notify(f.ctx)
		for _, id := range fastIDs {
			wctx, wcancel := context.WithTimeout(f.ctx, time.Minute)
			x, err := saga.Wait(wctx, f.store, id)
			wcancel()
			if err != nil || x.Status != berth.ExecutionSucceeded {
				t.Fatalf("fast execution behind the slow ones: %v %+v", err, x)
			}
		}
		close(release)
		for _, id := range slowIDs {
			wctx, wcancel := context.WithTimeout(f.ctx, time.Minute)
			x, err := saga.Wait(wctx, f.store, id)
			wcancel()
			if err != nil || x.Status != berth.ExecutionSucceeded {
				t.Fatalf("slow execution: %v %+v", err, x)
			}
			// One attempt allowed: none was used up by waiting its turn.
			if x.Attempt != 0 {
				t.Errorf("slow execution %s used %d attempts", id, x.Attempt)
			}
		}
		if got := most.Load(); got != 2 {
			t.Fatalf("at most %d slow executions ran at once, want 2", got)
		}
	})
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(time.Minute)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}
