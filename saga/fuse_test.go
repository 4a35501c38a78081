package saga_test

import (
	"context"
	"sync/atomic"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// countingStore counts read-write transactions.
type countingStore struct {
	berth.Store
	updates atomic.Int64
}

func (c *countingStore) Update(ctx context.Context, fn func(tx berth.Tx) error) error {
	c.updates.Add(1)
	return c.Store.Update(ctx, fn)
}

type localState struct{ Ran []string }

// localSaga has three local steps, a, b and c, and their compensations; the
// Tx of each counts its committed effect and fails as fail says.
func localSaga(fail map[string]func(n int) error) *saga.Definition[localState] {
	runs := map[string]int{}
	act := func(name string) saga.Action[localState] {
		return saga.Action[localState]{Name: name, Retry: saga.RetryPolicy{MaxAttempts: 3}, Tx: func(ctx context.Context, tx berth.Tx, r *saga.Run[localState]) error {
			runs[name]++
			r.State.Ran = append(r.State.Ran, name)
			if err := countEffect(tx, r.Execution.ID, name); err != nil {
				return err
			}
			if f := fail[name]; f != nil {
				return f(runs[name])
			}
			return nil
		}}
	}
	return &saga.Definition[localState]{
		Name: "local",
		Steps: []saga.Step[localState]{
			{Action: act("reserve"), Compensate: "release"},
			{Action: act("charge"), Compensate: "void"},
			{Action: act("confirm"), Compensate: "refund"},
		},
		Compensation: []saga.Action[localState]{act("refund"), act("void"), act("release")},
	}
}

// TestFusedLocalSteps: consecutive local steps and the end of the phase
// commit in one transaction, with the history and effects of running them
// one by one, also when one of them fails.
func TestFusedLocalSteps(t *testing.T) {
	tests := []struct {
		name    string
		fail    map[string]func(int) error
		status  berth.ExecutionStatus
		updates int64 // read-write transactions of the engine, with the claims (Tick ends on a claim that finds nothing)
		effects map[string]int
		history []string
	}{{
		name:    "AllInOne",
		status:  berth.ExecutionSucceeded,
		updates: 3, // claim; every step and the end; claim
		effects: map[string]int{"reserve": 1, "charge": 1, "confirm": 1},
		history: seq(started, done("reserve"), done("charge"), done("confirm"), []string{"ExecutionSucceeded"}),
	}, {
		name:    "BusinessFailureInAFusedStep",
		fail:    map[string]func(int) error{"charge": always(berth.Errorf(berth.ESOLDOUT, "gone"))},
		status:  berth.ExecutionFailed,
		updates: 3, // claim; reserve, the failed charge, the whole compensation and the end; claim
		effects: map[string]int{"reserve": 1, "void": 1, "release": 1},
		history: seq(started, done("reserve"), failed("charge"), compensated, undone("void"), undone("release"), []string{"ExecutionFailed"}),
	}, {
		name:    "TransientFailureInAFusedStep",
		fail:    map[string]func(int) error{"confirm": firstN(1, errDown)},
		status:  berth.ExecutionSucceeded,
		updates: 6, // claim; reserve, charge, confirm's retry; claim; then again: claim; confirm and the end; claim
		effects: map[string]int{"reserve": 1, "charge": 1, "confirm": 1},
		history: seq(started, done("reserve"), done("charge"), retried("confirm"), done("confirm"), []string{"ExecutionSucceeded"}),
	}}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dialects(t, func(t *testing.T, dialect string) {
				f := setup(t, dialect)
				cs := &countingStore{Store: f.store}
				e := saga.New(saga.Config{Store: cs, Clock: f.clock, Owner: "runner", Lease: lease})
				d := localSaga(tt.fail)
				saga.MustRegister(e, d)
				x := start(t, f, d, localState{}, saga.StartOptions{})
				x = f.runToEnd(t, e, x.ID)
				if x.Status != tt.status {
					t.Fatalf("status %s (%s), want %s", x.Status, x.Error, tt.status)
				}
				if got := cs.updates.Load(); got != tt.updates {
					t.Errorf("%d read-write transactions, want %d", got, tt.updates)
				}
				if got := f.effects(t, x.ID); !mapsEqual(got, tt.effects) {
					t.Errorf("effects %v, want %v", got, tt.effects)
				}
				if got := f.history(t, x.ID); !slicesEqual(got, tt.history) {
					t.Errorf("history\n got %v\nwant %v", got, tt.history)
				}
			})
		})
	}
}

func slicesEqual(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}
