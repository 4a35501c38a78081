package faults

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
)

// Clock is a fake clock that tests move (storetest.Clock is one).
type Clock interface {
	berth.Clock
	Set(time.Time)
}

// maxTicks bounds Drive: a saga that never settles is a bug, not a hang.
const maxTicks = 10_000

// Drive runs e with Tick until no execution is RUNNING, moving clock to
// whenever the next one is due: its retry time, or the end of the lease a
// crashed runner left behind. It stops early, with executions still
// running, when the next one is due after until (zero: no limit). db must
// see every execution (pass the real store, not a crashed wrapper).
func Drive(ctx context.Context, e *saga.Engine, db berth.Store, clock Clock, until time.Time) (ticks int, err error) {
	for ticks = 0; ticks < maxTicks; ticks++ {
		if _, err := e.Tick(ctx); err != nil {
			return ticks, err
		}
		next, running, err := NextDue(ctx, db)
		if err != nil || !running {
			return ticks + 1, err
		}
		if !until.IsZero() && next.After(until) {
			if clock.Now().Before(until) {
				clock.Set(until)
			}
			return ticks + 1, nil
		}
		if next.After(clock.Now()) {
			clock.Set(next)
		}
	}
	return ticks, fmt.Errorf("faults: executions still running after %d ticks", maxTicks)
}

// NextDue returns when the earliest RUNNING execution can next be claimed
// (after its retry time and any lease on it), and whether there is one.
func NextDue(ctx context.Context, db berth.Store) (time.Time, bool, error) {
	var next time.Time
	found := false
	err := db.View(ctx, func(tx berth.Tx) error {
		var after *berth.Cursor
		for {
			xs, err := tx.ListExecutions(berth.ExecutionQuery{Status: berth.ExecutionRunning, Page: berth.Page{After: after, Limit: 1000}})
			if err != nil {
				return err
			}
			for _, x := range xs {
				at := x.NextRunAt
				if x.LeaseUntil.After(at) {
					at = x.LeaseUntil
				}
				if !found || at.Before(next) {
					next, found = at, true
				}
			}
			if len(xs) < 1000 {
				return nil
			}
			after = &berth.Cursor{ID: xs[len(xs)-1].ID}
		}
	})
	return next, found, err
}

// RedriveAll redrives every DEAD execution and returns how many.
func RedriveAll(ctx context.Context, db berth.Store) (int, error) {
	ids, err := DeadIDs(ctx, db)
	if err != nil {
		return 0, err
	}
	for _, id := range ids {
		if _, err := saga.Redrive(ctx, db, id); err != nil {
			return 0, err
		}
	}
	return len(ids), nil
}

// DeadIDs lists the dead-letter queue.
func DeadIDs(ctx context.Context, db berth.Store) ([]string, error) {
	var ids []string
	err := db.View(ctx, func(tx berth.Tx) error {
		var after *berth.Cursor
		for {
			xs, err := tx.ListExecutions(berth.ExecutionQuery{Status: berth.ExecutionDead, Page: berth.Page{After: after, Limit: 1000}})
			if err != nil {
				return err
			}
			for _, x := range xs {
				ids = append(ids, x.ID)
			}
			if len(xs) < 1000 {
				return nil
			}
			after = &berth.Cursor{ID: xs[len(xs)-1].ID}
		}
	})
	return ids, err
}

// Redeliver puts finished event-handler jobs (definitions "on:…") whose id
// contains match back to work from their first step, as an at-least-once
// transport redelivering their events would. Handlers must be idempotent:
// the effects must not change. It returns how many jobs it reset.
func Redeliver(ctx context.Context, db berth.Store, match string) (int, error) {
	n := 0
	err := db.Update(ctx, func(tx berth.Tx) error {
		n = 0
		var after *berth.Cursor
		for {
			xs, err := tx.ListExecutions(berth.ExecutionQuery{Status: berth.ExecutionSucceeded, Page: berth.Page{After: after, Limit: 1000}})
			if err != nil {
				return err
			}
			for _, x := range xs {
				if !strings.HasPrefix(x.Definition, "on:") || !strings.Contains(x.ID, match) {
					continue
				}
				x.Status, x.Step, x.Attempt, x.NextRunAt = berth.ExecutionRunning, 0, 0, tx.Now()
				x.LeaseOwner, x.LeaseUntil = "", time.Time{}
				if err := tx.UpdateExecution(x); err != nil {
					return err
				}
				if err := tx.AppendHistory(&berth.HistoryEntry{ExecutionID: x.ID, Type: berth.HistExecutionRedriven, Detail: "event redelivered (test)"}); err != nil {
					return err
				}
				n++
			}
			if len(xs) < 1000 {
				return nil
			}
			after = &berth.Cursor{ID: xs[len(xs)-1].ID}
		}
	})
	return n, err
}

// HealAll clears the simulated provider's card faults (tok_refund_fail,
// tok_capture_fail) of every booking's charge, as `berth payments heal`
// does for the charges it is given. It returns how many it cleared.
func HealAll(ctx context.Context, db berth.Store) (int, error) {
	var refs []string
	err := db.View(ctx, func(tx berth.Tx) error {
		bs, err := listBookings(tx, func(*berth.Booking) bool { return true })
		if err != nil {
			return err
		}
		for _, b := range bs {
			if ch, err := tx.GetCharge(b.PaymentToken); err == nil {
				refs = append(refs, ch.ProviderRef)
			}
		}
		return nil
	})
	if err != nil || len(refs) == 0 {
		return 0, err
	}
	return payment.Heal(ctx, db, refs...)
}

// Hurry makes every RUNNING execution that waits for a retry due now, as an
// operator who knows the dependency is back would; executions that are
// leased or change meanwhile are left alone. It returns how many it moved.
func Hurry(ctx context.Context, db berth.Store) (int, error) {
	n := 0
	err := db.Update(ctx, func(tx berth.Tx) error {
		n = 0
		now := tx.Now()
		var after *berth.Cursor
		for {
			xs, err := tx.ListExecutions(berth.ExecutionQuery{Status: berth.ExecutionRunning, Page: berth.Page{After: after, Limit: 1000}})
			if err != nil {
				return err
			}
			for _, x := range xs {
				if !x.NextRunAt.After(now) || x.LeaseUntil.After(now) {
					continue
				}
				x.NextRunAt = now
				if err := tx.UpdateExecution(x); err != nil {
					return err
				}
				n++
			}
			if len(xs) < 1000 {
				return nil
			}
			after = &berth.Cursor{ID: xs[len(xs)-1].ID}
		}
	})
	return n, err
}
