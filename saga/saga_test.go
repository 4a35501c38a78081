package saga_test

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

func TestRegisterRejectsBadDefinitions(t *testing.T) {
	t.Parallel()
	tx := func(context.Context, berth.Tx, *saga.Run[struct{}]) error { return nil }
	step := func(name string) saga.Step[struct{}] {
		return saga.Step[struct{}]{Action: saga.Action[struct{}]{Name: name, Tx: tx}}
	}
	undo := saga.Action[struct{}]{Name: "undo", Tx: tx}
	for _, tt := range []struct {
		name  string
		lease time.Duration
		def   saga.Definition[struct{}]
		want  string // "" = accepted
	}{
		{"Valid", 0, saga.Definition[struct{}]{Name: "ok", Steps: []saga.Step[struct{}]{step("a")}, Compensation: []saga.Action[struct{}]{undo}}, ""},
		{"NoName", 0, saga.Definition[struct{}]{Steps: []saga.Step[struct{}]{step("a")}}, "needs a name and at least one step"},
		{"NoSteps", 0, saga.Definition[struct{}]{Name: "empty"}, "needs a name and at least one step"},
		{"StepWithoutName", 0, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{step("")}}, "step 0 needs a name"},
		{"StepWithoutWork", 0, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{Name: "idle"}}}}, "needs a name and a Call or Tx"},
		{"CompensationWithoutWork", 0, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{step("a")},
			Compensation: []saga.Action[struct{}]{{Name: "idle"}}}, "compensation 0 needs"},
		{"UnknownCompensate", 0, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{{Action: step("a").Action, Compensate: "nope"}},
			Compensation: []saga.Action[struct{}]{undo}}, `compensates at unknown "nope"`},
		{"TimeoutOverHalfTheLease", 30 * time.Second, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{Name: "slow", Tx: tx, Timeout: 16 * time.Second}}}},
			"timeout 16s exceeds half the lease"},
		{"DefaultTimeoutOverHalfTheLease", 10 * time.Second, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{step("a")}}, "exceeds half the lease"},
		{"CompensationTimeout", 30 * time.Second, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{step("a")},
			Compensation: []saga.Action[struct{}]{{Name: "slow-undo", Tx: tx, Timeout: time.Minute}}}, "slow-undo timeout"},
		{"TimeoutAtHalfTheLease", 30 * time.Second, saga.Definition[struct{}]{Name: "d", Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{Name: "ok", Tx: tx, Timeout: 15 * time.Second}}}}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			e := saga.New(saga.Config{Lease: tt.lease})
			err := saga.Register(e, &tt.def)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("Register: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("Register = %v, want an error containing %q", err, tt.want)
			}
		})
	}
	t.Run("Duplicate", func(t *testing.T) {
		t.Parallel()
		e := saga.New(saga.Config{})
		d := &saga.Definition[struct{}]{Name: "twice", Steps: []saga.Step[struct{}]{step("a")}}
		if err := saga.Register(e, d); err != nil {
			t.Fatal(err)
		}
		if err := saga.Register(e, d); err == nil || !strings.Contains(err.Error(), "registered twice") {
			t.Fatalf("second Register = %v", err)
		}
		defer func() {
			if recover() == nil {
				t.Fatal("MustRegister of a duplicate did not panic")
			}
		}()
		saga.MustRegister(e, d)
	})
}

func TestBackoff(t *testing.T) {
	t.Parallel()
	for _, tt := range []struct {
		p    saga.RetryPolicy
		n    int
		base time.Duration
	}{
		{saga.RetryPolicy{}, 1, 200 * time.Millisecond},
		{saga.RetryPolicy{}, 2, 400 * time.Millisecond},
		{saga.RetryPolicy{}, 4, 1600 * time.Millisecond},
		{saga.RetryPolicy{}, 20, 30 * time.Second},
		{saga.RetryPolicy{Initial: time.Second, Multiplier: 3, Max: 5 * time.Second}, 2, 3 * time.Second},
		{saga.RetryPolicy{Initial: time.Second, Multiplier: 3, Max: 5 * time.Second}, 3, 5 * time.Second},
	} {
		for range 50 {
			d := tt.p.Backoff(tt.n)
			if lo, hi := time.Duration(float64(tt.base)*0.8), time.Duration(float64(tt.base)*1.2); d < lo || d > hi {
				t.Fatalf("%+v.Backoff(%d) = %v, want within [%v, %v]", tt.p, tt.n, d, lo, hi)
			}
		}
	}
	// A negative jitter turns the randomness off.
	if d := (saga.RetryPolicy{Initial: time.Second, Jitter: -1}).Backoff(2); d != 2*time.Second {
		t.Fatalf("Backoff without jitter = %v", d)
	}
}

func TestRunKey(t *testing.T) {
	t.Parallel()
	r := &saga.Run[struct{}]{Execution: &berth.Execution{ID: "x1", Error: "SOLD_OUT: gone"}}
	if r.Key("charge") != "x1:charge" || r.Failure() != "SOLD_OUT: gone" {
		t.Fatalf("Key %q Failure %q", r.Key("charge"), r.Failure())
	}
}

// TestRunConcurrent runs 200 executions of a three-step saga on two
// concurrent engines with the real clock: every execution succeeds and
// every step's Tx commits exactly once.
func TestRunConcurrent(t *testing.T) {
	const executions = 200
	steps := []string{"one", "two", "three"}
	dialects(t, func(t *testing.T, dialect string) {
		f := setupClock(t, dialect, berth.SystemClock{})
		var calls atomic.Int64
		def := &saga.Definition[struct{ Seen int }]{Name: "triple"}
		for _, name := range steps {
			def.Steps = append(def.Steps, saga.Step[struct{ Seen int }]{Action: saga.Action[struct{ Seen int }]{
				Name: name,
				Call: func(ctx context.Context, r *saga.Run[struct{ Seen int }]) error {
					calls.Add(1)
					r.State.Seen++
					return nil
				},
				Tx: func(ctx context.Context, tx berth.Tx, r *saga.Run[struct{ Seen int }]) error {
					return countEffect(tx, r.Execution.ID, name)
				},
			}})
		}
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		var done []chan error
		for i := range 2 {
			e := saga.New(saga.Config{Store: f.store, Owner: fmt.Sprintf("runner-%d", i), Workers: 8})
			saga.MustRegister(e, def)
			ch := make(chan error, 1)
			done = append(done, ch)
			go func() { ch <- e.Run(ctx) }()
		}

		ids := make([]string, executions)
		if err := f.store.Update(ctx, func(tx berth.Tx) error {
			for i := range ids {
				x, err := def.Start(tx, struct{ Seen int }{}, saga.StartOptions{})
				if err != nil {
					return err
				}
				ids[i] = x.ID
			}
			return nil
		}); err != nil {
			t.Fatal(err)
		}
		f.store.Notify(ctx)

		for _, id := range ids {
			x, err := saga.Wait(ctx, f.store, id)
			if err != nil {
				t.Fatalf("waiting for %s: %v", id, err)
			}
			if x.Status != berth.ExecutionSucceeded || string(x.State) != `{"Seen":3}` {
				t.Fatalf("execution %s: %s %s %q", id, x.Status, x.State, x.Error)
			}
		}
		cancel()
		for _, ch := range done {
			if err := <-ch; err != nil {
				t.Fatalf("Run: %v", err)
			}
		}

		n := view(t, f, func(tx berth.Tx) (int, error) { return tx.CountExecutions(berth.ExecutionSucceeded) })
		if n != executions {
			t.Fatalf("%d executions succeeded, want %d", n, executions)
		}
		err := f.store.View(context.Background(), func(tx berth.Tx) error {
			for _, id := range ids {
				for _, s := range steps {
					v, err := tx.GetKV("effects", id+"/"+s)
					if err != nil {
						return fmt.Errorf("%s/%s: %w", id, s, err)
					}
					if c, _ := strconv.Atoi(string(v)); c != 1 {
						return fmt.Errorf("%s/%s committed %d times", id, s, c)
					}
				}
			}
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
		if c := calls.Load(); c < executions*int64(len(steps)) {
			t.Fatalf("%d calls for %d steps", c, executions*len(steps))
		}
	})
}
