package faults

import (
	"context"
	"errors"
	"sync"

	"github.com/berthhq/berth"
)

// ErrCrashed is what every transaction of a crashed Store returns: the
// process is gone, nothing it was doing commits.
var ErrCrashed = errors.New("faults: the process crashed (injected)")

// Call is one operation inside a transaction, as a TxFault sees it.
// Method is the berth.Tx method name ("Reserve", "UpdateBooking", …) or
// "Update" for the start of a read-write transaction (Arg: its number,
// counting from 1). Arg is the method's first argument.
type Call struct {
	Method string
	Arg    any
}

// TxFault makes operations inside transactions fail. The transaction then
// rolls back, exactly as it would if the database had failed.
type TxFault struct {
	Name  string          // for messages and Hits
	Match func(Call) bool // which operation fails
	Times int             // how many matching calls fail; 0: every one until Clear
	Err   error           // the error (default: UNAVAILABLE)
	Crash bool            // the process dies at this call (see Store.Restart)
	left  int
}

// Store is a berth.Store whose transactions fail on demand. It is safe for
// concurrent use.
type Store struct {
	inner berth.Store

	mu      sync.Mutex
	rules   []*TxFault
	hits    map[string]int
	updates int
	crashed bool
}

var _ berth.Store = (*Store)(nil)

// NewStore wraps inner.
func NewStore(inner berth.Store) *Store { return &Store{inner: inner, hits: map[string]int{}} }

// Inject adds a fault.
func (s *Store) Inject(f TxFault) {
	s.mu.Lock()
	defer s.mu.Unlock()
	f.left = f.Times
	if f.left <= 0 {
		f.left = -1
	}
	if f.Err == nil && !f.Crash {
		f.Err = berth.Errorf(berth.EUNAVAILABLE, "the database is unavailable (injected: %s)", f.Name)
	}
	s.rules = append(s.rules, &f)
}

// Clear removes every fault (a crashed store stays crashed until Restart).
func (s *Store) Clear() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.rules = nil
}

// Hits returns how many times the fault named name fired.
func (s *Store) Hits(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hits[name]
}

// Fired returns how many times any fault fired.
func (s *Store) Fired() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := 0
	for _, h := range s.hits {
		n += h
	}
	return n
}

// Crashed reports whether a Crash fault fired since the last Restart.
func (s *Store) Crashed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.crashed
}

// Crash makes the store behave as if the process died now.
func (s *Store) Crash() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashed = true
}

// Restart ends a crash: the next process uses the database again.
func (s *Store) Restart() {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.crashed = false
}

// check returns the injected error for c, if any.
func (s *Store) check(c Call) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.crashed {
		return ErrCrashed
	}
	for _, r := range s.rules {
		if r.left == 0 || !r.Match(c) {
			continue
		}
		if r.left > 0 {
			r.left--
		}
		s.hits[r.Name]++
		if r.Crash {
			s.crashed = true
			return ErrCrashed
		}
		return r.Err
	}
	return nil
}

// Update implements berth.Store.
func (s *Store) Update(ctx context.Context, fn func(tx berth.Tx) error) error {
	s.mu.Lock()
	s.updates++
	n := s.updates
	s.mu.Unlock()
	if err := s.check(Call{Method: "Update", Arg: n}); err != nil {
		return err
	}
	return s.inner.Update(ctx, func(tx berth.Tx) error {
		err := fn(&faultTx{Tx: tx, s: s})
		if s.Crashed() {
			return ErrCrashed // never commit what a dead process was doing
		}
		return err
	})
}

// View implements berth.Store.
func (s *Store) View(ctx context.Context, fn func(tx berth.Tx) error) error {
	if s.Crashed() {
		return ErrCrashed
	}
	return s.inner.View(ctx, fn)
}

// Notify implements berth.Store.
func (s *Store) Notify(ctx context.Context) {
	if !s.Crashed() {
		s.inner.Notify(ctx)
	}
}

// Wakeups implements berth.Store.
func (s *Store) Wakeups() <-chan struct{} { return s.inner.Wakeups() }

// Close implements berth.Store; it does not close the wrapped store.
func (s *Store) Close() error { return nil }

// faultTx intercepts the Tx methods the sagas' steps use to change state.
type faultTx struct {
	berth.Tx
	s *Store
}

func (t *faultTx) Reserve(h *berth.Hold) (bool, error) {
	if err := t.s.check(Call{"Reserve", h}); err != nil {
		return false, err
	}
	return t.Tx.Reserve(h)
}

func (t *faultTx) Release(key string) (bool, error) {
	if err := t.s.check(Call{"Release", key}); err != nil {
		return false, err
	}
	return t.Tx.Release(key)
}

func (t *faultTx) CreateBooking(b *berth.Booking) error {
	if err := t.s.check(Call{"CreateBooking", b}); err != nil {
		return err
	}
	return t.Tx.CreateBooking(b)
}

func (t *faultTx) UpdateBooking(b *berth.Booking) error {
	if err := t.s.check(Call{"UpdateBooking", b}); err != nil {
		return err
	}
	return t.Tx.UpdateBooking(b)
}

func (t *faultTx) CreateTicket(k *berth.Ticket) error {
	if err := t.s.check(Call{"CreateTicket", k}); err != nil {
		return err
	}
	return t.Tx.CreateTicket(k)
}

func (t *faultTx) UpdateTicket(k *berth.Ticket) error {
	if err := t.s.check(Call{"UpdateTicket", k}); err != nil {
		return err
	}
	return t.Tx.UpdateTicket(k)
}

func (t *faultTx) CreateCharge(c *berth.Charge) error {
	if err := t.s.check(Call{"CreateCharge", c}); err != nil {
		return err
	}
	return t.Tx.CreateCharge(c)
}

func (t *faultTx) UpdateCharge(c *berth.Charge) error {
	if err := t.s.check(Call{"UpdateCharge", c}); err != nil {
		return err
	}
	return t.Tx.UpdateCharge(c)
}

func (t *faultTx) AppendEvent(e *berth.Event) error {
	if err := t.s.check(Call{"AppendEvent", e}); err != nil {
		return err
	}
	return t.Tx.AppendEvent(e)
}

func (t *faultTx) CreateExecution(x *berth.Execution) error {
	if err := t.s.check(Call{"CreateExecution", x}); err != nil {
		return err
	}
	return t.Tx.CreateExecution(x)
}

func (t *faultTx) UpdateExecution(x *berth.Execution) error {
	if err := t.s.check(Call{"UpdateExecution", x}); err != nil {
		return err
	}
	return t.Tx.UpdateExecution(x)
}

func (t *faultTx) ClaimExecutions(c berth.Claim) ([]*berth.Execution, error) {
	if err := t.s.check(Call{"ClaimExecutions", c.Owner}); err != nil {
		return nil, err
	}
	return t.Tx.ClaimExecutions(c)
}

func (t *faultTx) AddLoyaltyEntry(e *berth.LoyaltyEntry) (bool, error) {
	if err := t.s.check(Call{"AddLoyaltyEntry", e}); err != nil {
		return false, err
	}
	return t.Tx.AddLoyaltyEntry(e)
}

// Matchers for the operations each saga step performs.

// OnReserve matches Reserve Flight's seat decrement.
func OnReserve() func(Call) bool { return func(c Call) bool { return c.Method == "Reserve" } }

// OnRelease matches Release Flight Seat.
func OnRelease() func(Call) bool { return func(c Call) bool { return c.Method == "Release" } }

// OnCreateTicket matches Reserve Booking's ticket.
func OnCreateTicket() func(Call) bool { return func(c Call) bool { return c.Method == "CreateTicket" } }

// OnBookingStatus matches a booking update to status (Confirm Booking:
// CONFIRMED; Cancel Booking: CANCELLED).
func OnBookingStatus(st berth.BookingStatus) func(Call) bool {
	return func(c Call) bool {
		b, ok := c.Arg.(*berth.Booking)
		return c.Method == "UpdateBooking" && ok && b.Status == st
	}
}

// OnChargeStatus matches a charge update to status (Collect Payment:
// CAPTURED; Refund Payment: VOIDED or REFUNDED).
func OnChargeStatus(st berth.ChargeStatus) func(Call) bool {
	return func(c Call) bool {
		ch, ok := c.Arg.(*berth.Charge)
		return c.Method == "UpdateCharge" && ok && ch.Status == st
	}
}

// OnEvent matches publishing an event of type typ (the Notify steps).
func OnEvent(typ string) func(Call) bool {
	return func(c Call) bool {
		e, ok := c.Arg.(*berth.Event)
		return c.Method == "AppendEvent" && ok && e.Type == typ
	}
}

// OnLoyalty matches a loyalty ledger entry of kind (the loyalty job).
func OnLoyalty(kind berth.LoyaltyKind) func(Call) bool {
	return func(c Call) bool {
		e, ok := c.Arg.(*berth.LoyaltyEntry)
		return c.Method == "AddLoyaltyEntry" && ok && e.Kind == kind
	}
}

// OnStepCommit matches the commit that records step (0-based) of phase of
// an execution of definition as done: the step's effects and the move past
// it (the engine may commit the local steps after it, and the end of the
// execution, in the same transaction). Failing it is a crash after the
// step's outside-world call and before its commit. Inject it before the
// execution reaches the step: the first commit past the step matches.
func OnStepCommit(definition string, phase berth.Phase, step int) func(Call) bool {
	return func(c Call) bool {
		x, ok := c.Arg.(*berth.Execution)
		return c.Method == "UpdateExecution" && ok && x.Definition == definition && x.Phase == phase && x.Step > step
	}
}

// OnUpdate matches the start of the nth read-write transaction from now
// (counting from 1), whatever it does.
func (s *Store) OnUpdate(n int) func(Call) bool {
	s.mu.Lock()
	at := s.updates + n
	s.mu.Unlock()
	return func(c Call) bool { return c.Method == "Update" && c.Arg.(int) == at }
}

// OnNthCommit matches the nth execution update from the fault's injection:
// the commit of some saga step, whichever runs.
func OnNthCommit(n int) func(Call) bool {
	var mu sync.Mutex
	return func(c Call) bool {
		if c.Method != "UpdateExecution" {
			return false
		}
		mu.Lock()
		defer mu.Unlock()
		n--
		return n == 0
	}
}
