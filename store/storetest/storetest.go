// Package storetest is the conformance suite for berth.Store
// implementations: every dialect runs the same tests (after river's
// riverdrivertest.Exercise), so that business code never has to ask which
// database it runs on.
//
// Where the contract in berth.Store and berth.Tx documents a behaviour (an
// error code, an ordering, idempotency), the suite checks it; where the two
// databases may legitimately differ it says so in a comment.
package storetest

import (
	"context"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// OpenFunc opens a fresh, empty store that tells time by clock and lives as
// long as t (it registers its own cleanup).
type OpenFunc func(t *testing.T, clock berth.Clock) berth.Store

// Start is the fake clock's initial time. It has nanoseconds on purpose:
// stores keep microseconds.
var Start = time.Date(2026, 3, 1, 12, 0, 0, 123456789, time.UTC)

// Clock is a fake berth.Clock: time stands still until Advance or Set.
type Clock struct {
	mu  sync.Mutex
	now time.Time
}

// NewClock returns a clock showing start.
func NewClock(start time.Time) *Clock { return &Clock{now: start} }

// Now returns the clock's time.
func (c *Clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

// Advance moves the clock forward by d and returns the new time.
func (c *Clock) Advance(d time.Duration) time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = c.now.Add(d)
	return c.now
}

// Set moves the clock to at.
func (c *Clock) Set(at time.Time) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.now = at
}

// bundle is what every test gets: a fresh store and its clock.
type bundle struct {
	ctx   context.Context
	store berth.Store
	clock *Clock
}

func setup(t *testing.T, open OpenFunc) *bundle {
	t.Helper()
	clock := NewClock(Start)
	return &bundle{ctx: context.Background(), store: open(t, clock), clock: clock}
}

// Exercise runs the conformance suite against the store that open returns.
// Every test gets its own store, so the tests run in parallel.
func Exercise(t *testing.T, open OpenFunc) {
	tests := []struct {
		name string
		fn   func(t *testing.T, b *bundle)
	}{
		{"Transactions", testTransactions},
		{"Notify", testNotify},
		{"Accounts", testAccounts},
		{"APIKeys", testAPIKeys},
		{"Flights", testFlights},
		{"UpdateFlight", testUpdateFlight},
		{"DeleteFlight", testDeleteFlight},
		{"ListFlights", testListFlights},
		{"Reserve", testReserve},
		{"Release", testRelease},
		{"ReserveRace", testReserveRace},
		{"ReleaseRace", testReleaseRace},
		{"Bookings", testBookings},
		{"ListBookings", testListBookings},
		{"Tickets", testTickets},
		{"Charges", testCharges},
		{"Events", testEvents},
		{"Executions", testExecutions},
		{"ClaimExecutions", testClaimExecutions},
		{"ClaimExecutionsByDefinition", testClaimExecutionsByDefinition},
		{"NextDueAndReleaseLeases", testNextDueAndReleaseLeases},
		{"ListExecutions", testListExecutions},
		{"History", testHistory},
		{"Loyalty", testLoyalty},
		{"Webhooks", testWebhooks},
		{"KV", testKV},
		{"Times", testTimes},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tt.fn(t, setup(t, open))
		})
	}
}

// update runs fn in a transaction and fails the test on an error.
func (b *bundle) update(t *testing.T, fn func(tx berth.Tx) error) {
	t.Helper()
	if err := b.store.Update(b.ctx, fn); err != nil {
		t.Fatalf("Update: %v", err)
	}
}

// updateErr runs fn in a transaction and returns its error.
func (b *bundle) updateErr(fn func(tx berth.Tx) error) error {
	return b.store.Update(b.ctx, fn)
}

// view returns what fn reads in a read-only transaction, failing the test on
// an error.
func view[T any](t *testing.T, b *bundle, fn func(tx berth.Tx) (T, error)) T {
	t.Helper()
	var v T
	if err := b.store.View(b.ctx, func(tx berth.Tx) (err error) { v, err = fn(tx); return err }); err != nil {
		t.Fatalf("View: %v", err)
	}
	return v
}

// viewErr returns the error fn meets in a read-only transaction.
func viewErr[T any](b *bundle, fn func(tx berth.Tx) (T, error)) error {
	return b.store.View(b.ctx, func(tx berth.Tx) error { _, err := fn(tx); return err })
}

// write returns what fn returns in a read-write transaction, failing the
// test on an error.
func write[T any](t *testing.T, b *bundle, fn func(tx berth.Tx) (T, error)) T {
	t.Helper()
	var v T
	if err := b.store.Update(b.ctx, func(tx berth.Tx) (err error) { v, err = fn(tx); return err }); err != nil {
		t.Fatalf("Update: %v", err)
	}
	return v
}

// wantCode fails the test unless err carries code (and, if msg is not "",
// exactly that message).
func wantCode(t *testing.T, err error, code, msg string) {
	t.Helper()
	if got := berth.ErrorCode(err); got != code {
		t.Fatalf("error code = %q (%v), want %q", got, err, code)
	}
	if msg != "" && berth.ErrorMessage(err) != msg {
		t.Fatalf("error message = %q, want %q", berth.ErrorMessage(err), msg)
	}
}

// paginate reads a whole list page by page, failing on a page longer than
// limit or on a list that does not end.
func paginate[T any](t *testing.T, b *bundle, limit int, desc bool, list func(tx berth.Tx, p berth.Page) ([]T, error), cursor func(T) berth.Cursor) []T {
	t.Helper()
	var all []T
	var after *berth.Cursor
	for i := 0; ; i++ {
		if i > 100 {
			t.Fatalf("pagination does not end")
		}
		p := berth.Page{After: after, Limit: limit, Desc: desc}
		items := view(t, b, func(tx berth.Tx) ([]T, error) { return list(tx, p) })
		if len(items) > limit {
			t.Fatalf("page %d has %d items, limit %d", i, len(items), limit)
		}
		all = append(all, items...)
		if len(items) < limit {
			return all
		}
		c := cursor(items[len(items)-1])
		after = &c
	}
}
