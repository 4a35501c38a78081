package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/berthhq/berth"
)

// CountingStore is a berth.Store that counts what goes through it: committed
// read-write transactions (each one an fsync on SQLite with
// synchronous=FULL, a WAL flush on PostgreSQL), read-only transactions, and
// the Tx calls made in them (about one SQL statement each; see Statements).
// Go benchmarks wrap the store they hand to the engine and the services
// with it, to report commits and statements per saga.
type CountingStore struct {
	berth.Store
	commits, rollbacks, views atomic.Int64
	mu                        sync.Mutex
	calls                     map[string]int64
}

// NewCountingStore wraps s.
func NewCountingStore(s berth.Store) *CountingStore {
	return &CountingStore{Store: s, calls: map[string]int64{}}
}

// Update counts a commit when fn's transaction commits.
func (s *CountingStore) Update(ctx context.Context, fn func(berth.Tx) error) error {
	err := s.Store.Update(ctx, func(tx berth.Tx) error { return fn(countingTx{tx, s}) })
	if err == nil {
		s.commits.Add(1)
	} else {
		s.rollbacks.Add(1)
	}
	return err
}

// View counts a read-only transaction.
func (s *CountingStore) View(ctx context.Context, fn func(berth.Tx) error) error {
	s.views.Add(1)
	return s.Store.View(ctx, func(tx berth.Tx) error { return fn(countingTx{tx, s}) })
}

func (s *CountingStore) count(name string, n int) {
	s.mu.Lock()
	s.calls[name] += int64(n)
	s.mu.Unlock()
}

// Counts is a snapshot of a CountingStore.
type Counts struct {
	Commits, Rollbacks, Views int64
	Calls                     map[string]int64 // Tx method → calls (AppendHistory: entries)
}

// Counts returns the counts so far.
func (s *CountingStore) Counts() Counts {
	s.mu.Lock()
	defer s.mu.Unlock()
	return Counts{Commits: s.commits.Load(), Rollbacks: s.rollbacks.Load(), Views: s.views.Load(), Calls: maps.Clone(s.calls)}
}

// Reset zeroes the counts.
func (s *CountingStore) Reset() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.commits.Store(0)
	s.rollbacks.Store(0)
	s.views.Store(0)
	clear(s.calls)
}

// statementsPer are the SQL statements of a Tx call on its usual path
// (Reserve: look up the hold, the guarded UPDATE, insert the hold; Release:
// look up, two UPDATEs).
var statementsPer = map[string]int64{"Reserve": 3, "Release": 3}

// Statements estimates the SQL statements the calls ran.
func (c Counts) Statements() int64 {
	var n int64
	for name, k := range c.Calls {
		if w, ok := statementsPer[name]; ok {
			n += k * w
		} else {
			n += k
		}
	}
	return n
}

// Breakdown formats the calls per unit (e.g. per saga), most frequent first.
func (c Counts) Breakdown(units int) string {
	if units <= 0 {
		units = 1
	}
	names := slices.Collect(maps.Keys(c.Calls))
	slices.SortFunc(names, func(a, b string) int {
		if c.Calls[a] != c.Calls[b] {
			return int(c.Calls[b] - c.Calls[a])
		}
		return strings.Compare(a, b)
	})
	var b strings.Builder
	fmt.Fprintf(&b, "per unit: %.2f commits, %.2f read-only transactions, %.1f statements;", float64(c.Commits)/float64(units),
		float64(c.Views)/float64(units), float64(c.Statements())/float64(units))
	for _, n := range names {
		fmt.Fprintf(&b, " %s %.2f", n, float64(c.Calls[n])/float64(units))
	}
	return b.String()
}

// countingTx counts the calls of the booking path's Tx methods.
type countingTx struct {
	berth.Tx
	s *CountingStore
}

func (t countingTx) GetFlight(id string) (*berth.Flight, error) {
	t.s.count("GetFlight", 1)
	return t.Tx.GetFlight(id)
}

func (t countingTx) GetResource(id string) (*berth.Resource, error) {
	t.s.count("GetResource", 1)
	return t.Tx.GetResource(id)
}

func (t countingTx) Reserve(h *berth.Hold) (bool, error) {
	t.s.count("Reserve", 1)
	return t.Tx.Reserve(h)
}

func (t countingTx) Release(key string) (bool, error) {
	t.s.count("Release", 1)
	return t.Tx.Release(key)
}

func (t countingTx) CreateBooking(b *berth.Booking) error {
	t.s.count("CreateBooking", 1)
	return t.Tx.CreateBooking(b)
}

func (t countingTx) GetBooking(id string) (*berth.Booking, error) {
	t.s.count("GetBooking", 1)
	return t.Tx.GetBooking(id)
}

func (t countingTx) GetBookingByIdempotencyKey(customer, key string) (*berth.Booking, error) {
	t.s.count("GetBookingByIdempotencyKey", 1)
	return t.Tx.GetBookingByIdempotencyKey(customer, key)
}

func (t countingTx) UpdateBooking(b *berth.Booking) error {
	t.s.count("UpdateBooking", 1)
	return t.Tx.UpdateBooking(b)
}

func (t countingTx) CreateTicket(tk *berth.Ticket) error {
	t.s.count("CreateTicket", 1)
	return t.Tx.CreateTicket(tk)
}

func (t countingTx) ListTickets(bookingID string) ([]*berth.Ticket, error) {
	t.s.count("ListTickets", 1)
	return t.Tx.ListTickets(bookingID)
}

func (t countingTx) CreateCharge(c *berth.Charge) error {
	t.s.count("CreateCharge", 1)
	return t.Tx.CreateCharge(c)
}

func (t countingTx) GetCharge(id string) (*berth.Charge, error) {
	t.s.count("GetCharge", 1)
	return t.Tx.GetCharge(id)
}

func (t countingTx) UpdateCharge(c *berth.Charge) error {
	t.s.count("UpdateCharge", 1)
	return t.Tx.UpdateCharge(c)
}

func (t countingTx) AppendEvent(e *berth.Event) error {
	t.s.count("AppendEvent", 1)
	return t.Tx.AppendEvent(e)
}

func (t countingTx) ListWebhooks() ([]*berth.Webhook, error) {
	t.s.count("ListWebhooks", 1)
	return t.Tx.ListWebhooks()
}

func (t countingTx) CreateExecution(x *berth.Execution) error {
	t.s.count("CreateExecution", 1)
	return t.Tx.CreateExecution(x)
}

func (t countingTx) GetExecution(id string) (*berth.Execution, error) {
	t.s.count("GetExecution", 1)
	return t.Tx.GetExecution(id)
}

func (t countingTx) UpdateExecution(x *berth.Execution) error {
	t.s.count("UpdateExecution", 1)
	return t.Tx.UpdateExecution(x)
}

func (t countingTx) ClaimExecutions(c berth.Claim) ([]*berth.Execution, error) {
	t.s.count("ClaimExecutions", 1)
	return t.Tx.ClaimExecutions(c)
}

func (t countingTx) CountExecutions(status berth.ExecutionStatus) (int, error) {
	t.s.count("CountExecutions", 1)
	return t.Tx.CountExecutions(status)
}

func (t countingTx) AppendHistory(entries ...*berth.HistoryEntry) error {
	t.s.count("AppendHistory", len(entries))
	return t.Tx.AppendHistory(entries...)
}

func (t countingTx) AddLoyaltyEntry(e *berth.LoyaltyEntry) (bool, error) {
	t.s.count("AddLoyaltyEntry", 1)
	return t.Tx.AddLoyaltyEntry(e)
}

func (t countingTx) GetKV(namespace, key string) ([]byte, error) {
	t.s.count("GetKV", 1)
	return t.Tx.GetKV(namespace, key)
}

func (t countingTx) PutKV(namespace, key string, value []byte) error {
	t.s.count("PutKV", 1)
	return t.Tx.PutKV(namespace, key, value)
}
