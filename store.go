package berth

import (
	"context"
	"time"
)

// Store is berth's persistence. Every change happens in a transaction run by
// Update; the store owns the transaction, retries it when the database asks
// for a retry (busy, serialization failure, deadlock), and so calls fn again:
// fn must have no effect outside the transaction.
type Store interface {
	// Update runs fn in a read-write transaction and commits it if fn
	// returns nil.
	Update(ctx context.Context, fn func(tx Tx) error) error
	// View runs fn in a read-only transaction (a consistent snapshot).
	View(ctx context.Context, fn func(tx Tx) error) error
	// Notify wakes saga runners (in this process and, where the database
	// supports it, in other replicas). Called after new work is committed.
	Notify(ctx context.Context)
	// Wakeups delivers a value whenever another process (or this one) calls
	// Notify. Nil when the store has no cross-process notifications.
	Wakeups() <-chan struct{}
	Close() error
}

// Claim selects the executions Tx.ClaimExecutions leases.
type Claim struct {
	Owner string        // the runner taking the lease
	Lease time.Duration // the lease lasts until now+Lease
	Limit int           // at most this many
	// Definitions, if not empty, limits the claim to executions of these
	// definitions; Except excludes executions of these.
	Definitions, Except []string
}

// Cursor is a position in an ordered list: the sort key and the id of the
// last item seen. Transports encode it as an opaque nextToken.
type Cursor struct {
	Key string
	ID  string
}

// Page selects a slice of an ordered list.
type Page struct {
	After *Cursor // nil: from the start
	Limit int     // at most this many items
	Desc  bool    // descending order
}

// FlightQuery selects flights. With DepartureAirportCode set the flights are
// ordered by departure date (the schedule index); otherwise by id.
type FlightQuery struct {
	DepartureAirportCode string
	ArrivalAirportCode   string
	// DepartureFrom and DepartureTo bound the departure date string
	// (inclusive; "" = unbounded). A prefix p is the range [p, p+"\uffff"].
	DepartureFrom, DepartureTo string
	Page
}

// BookingQuery selects bookings. With Customer set they are ordered by
// (status, id), the ByCustomerStatus index; otherwise by id.
type BookingQuery struct {
	Customer             string
	StatusFrom, StatusTo string // inclusive bounds on the status name; "" = unbounded
	Page
}

// ExecutionQuery selects executions ordered by id.
type ExecutionQuery struct {
	Status     ExecutionStatus // "" = any
	Definition string          // "" = any
	Page
}

// EventQuery selects events ordered by Seq.
type EventQuery struct {
	Who      string // "" = any
	Subject  string // "" = any
	Type     string // "" = any
	AfterSeq int64
	Limit    int
}

// Tx is the set of operations available inside a transaction. Methods use
// the context given to Store.Update or Store.View. Unless stated otherwise a
// missing row is a NOT_FOUND *Error and a uniqueness violation a CONFLICT.
type Tx interface {
	Now() time.Time // the store clock's time, fixed for the transaction

	// Savepoint runs fn inside a savepoint of the transaction: if fn
	// returns an error (or panics), fn's writes are undone, the
	// transaction carries on without them, and the error is returned.
	// A failed statement inside fn does not doom the transaction.
	Savepoint(fn func() error) error

	// Accounts and API keys.
	CreateAccount(a *Account) error // CONFLICT with "username already exists" / "email already exists"
	GetAccount(id string) (*Account, error)
	GetAccountByUsername(username string) (*Account, error)
	CreateAPIKey(k *APIKey) error
	GetAPIKey(id string) (*APIKey, error)
	ListAPIKeys() ([]*APIKey, error)
	RevokeAPIKey(id string, at time.Time) error

	// Resources and flights.
	CreateFlight(f *Flight) error
	// UpdateFlight changes a flight's descriptive fields, price and seat
	// allocation. A new allocation moves the available seats by the same
	// difference; INVALID if that would make them negative.
	UpdateFlight(f *Flight) error
	// DeleteFlight removes a flight; CONFLICT if any booking refers to it.
	DeleteFlight(id string) error
	GetFlight(id string) (*Flight, error)
	// GetFlights returns the flights with the given ids that exist, by id.
	GetFlights(ids []string) (map[string]*Flight, error)
	ListFlights(q FlightQuery) ([]*Flight, error)
	GetResource(id string) (*Resource, error)

	// Reserve takes h.Quantity units of h.ResourceID under h.Key with one
	// guarded decrement. It is idempotent: if a hold with that key exists it
	// is returned unchanged (taken=false) and nothing else happens. Returns
	// SOLD_OUT when not enough units are left.
	Reserve(h *Hold) (taken bool, err error)
	// Release gives back the units of the hold with key, once: it returns
	// false if there is no such hold or it was already released.
	Release(key string) (released bool, err error)
	GetHold(key string) (*Hold, error)

	// Bookings and tickets.
	CreateBooking(b *Booking) error
	GetBooking(id string) (*Booking, error)
	// GetBookingByIdempotencyKey returns the customer's booking made with key.
	GetBookingByIdempotencyKey(customer, key string) (*Booking, error)
	// GetBookingByPaymentToken returns the booking paid by charge id.
	GetBookingByPaymentToken(chargeID string) (*Booking, error)
	// UpdateBooking writes b's mutable fields (status, reference, checked-in,
	// execution id) if b.Version is current, and bumps b.Version. CONFLICT
	// if the booking changed since it was read.
	UpdateBooking(b *Booking) error
	DeleteBooking(id string) error
	ListBookings(q BookingQuery) ([]*Booking, error)
	CreateTicket(t *Ticket) error
	ListTickets(bookingID string) ([]*Ticket, error)
	UpdateTicket(t *Ticket) error

	// Charges.
	CreateCharge(c *Charge) error
	GetCharge(id string) (*Charge, error)
	UpdateCharge(c *Charge) error // optimistic, as UpdateBooking

	// Events: the audit log and event store.
	AppendEvent(e *Event) error // assigns e.Seq
	ListEvents(q EventQuery) ([]*Event, error)

	// Saga executions and their history.
	CreateExecution(x *Execution) error
	GetExecution(id string) (*Execution, error)
	// UpdateExecution writes x if x.Version is current and bumps it;
	// CONFLICT if another runner changed it (the lease was lost).
	UpdateExecution(x *Execution) error
	// ClaimExecutions leases up to c.Limit RUNNING executions that are due
	// at now and not leased by anyone else, to c.Owner until now+c.Lease,
	// the longest waiting first. Returns them with the new lease (and
	// version).
	ClaimExecutions(c Claim) ([]*Execution, error)
	// NextDue returns when the earliest RUNNING execution is due (zero if none).
	NextDue() (time.Time, error)
	// ReleaseLeases clears every lease (the process is the only runner and
	// starts fresh); returns how many were cleared.
	ReleaseLeases() (int, error)
	ListExecutions(q ExecutionQuery) ([]*Execution, error)
	CountExecutions(status ExecutionStatus) (int, error)
	AppendHistory(entries ...*HistoryEntry) error
	ListHistory(executionID string) ([]*HistoryEntry, error)

	// Loyalty ledger.
	// AddLoyaltyEntry records e; it returns false and changes nothing if an
	// entry of the same kind for the same booking exists.
	AddLoyaltyEntry(e *LoyaltyEntry) (added bool, err error)
	LoyaltyPoints(customer string) (int64, error)

	// Webhook subscriptions.
	CreateWebhook(w *Webhook) error
	GetWebhook(id string) (*Webhook, error)
	ListWebhooks() ([]*Webhook, error)
	DeleteWebhook(id string) error

	// A small key-value space for components that keep their own state
	// (the simulated payment provider). Get returns NOT_FOUND if missing.
	GetKV(namespace, key string) ([]byte, error)
	PutKV(namespace, key string, value []byte) error
}
