package graphql

import (
	"context"
	"slices"
	"time"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// getBooking's long-poll (waitFor, timeoutMs). MaxWait stays below the HTTP
// server's WriteTimeout (60s in cmd/berth serve), so that a waiting answer
// is always written.
const (
	DefaultWait = 10 * time.Second
	MaxWait     = 25 * time.Second
	// While waiting, the booking is read again whenever this process
	// commits a change to it (airline.Service.WatchBooking), and on a timer
	// for the changes this process does not see. The process that accepts
	// a booking runs its saga (saga.Engine.Handoff), so on PostgreSQL the
	// timer matters only when another replica took the work over (a retry
	// after a transient failure, a crash, an admin elsewhere): a read after
	// waitPollMin, then at intervals growing by half up to waitPollMax. When
	// this process is the only one on its database (SQLite) every change is
	// signalled and the timer is a safety net, every waitPollSafety.
	waitPollMin    = 100 * time.Millisecond
	waitPollMax    = time.Second
	waitPollSafety = time.Second
)

// GetBooking reads a booking and, with waitFor, waits until its status is
// one of waitFor (see the schema). Who may read it is checked before any
// wait: a caller who may not see it gets NOT_FOUND at once, exactly as for
// a missing booking.
func (r queryResolver) GetBooking(ctx context.Context, id string, waitFor []berth.BookingStatus, timeoutMs *int) (*berth.Booking, error) {
	wait, err := waitTimeout(timeoutMs)
	if err != nil {
		return nil, err
	}
	if len(waitFor) == 0 || wait == 0 {
		return r.air.GetBooking(ctx, id)
	}
	// Watch before the first read, so that no change committed after it
	// goes unsignalled.
	changed, stop := r.air.WatchBooking(id)
	defer stop()
	b, err := r.air.GetBooking(ctx, id)
	if err != nil || slices.Contains(waitFor, b.Status) {
		return b, err
	}
	select {
	case r.waiters <- struct{}{}:
		defer func() { <-r.waiters }()
	default:
		return b, nil // too many requests waiting: the status as it is
	}
	return r.waitBooking(ctx, b, waitFor, wait, changed)
}

// waitTimeout validates getBooking's timeoutMs: nil is DefaultWait, above
// MaxWait is MaxWait, negative is INVALID.
func waitTimeout(ms *int) (time.Duration, error) {
	switch {
	case ms == nil:
		return DefaultWait, nil
	case *ms < 0:
		return 0, berth.Errorf(berth.EINVALID, "timeoutMs must be between 0 and %d", MaxWait.Milliseconds())
	}
	return min(time.Duration(*ms)*time.Millisecond, MaxWait), nil
}

// waitBooking reads b again, when changed says it changed and on a timer,
// until its status is one of waitFor, wait has passed or ctx is done, and
// returns it as last read. Each read is
// authorized again, so a booking deleted meanwhile is NOT_FOUND.
func (r queryResolver) waitBooking(ctx context.Context, b *berth.Booking, waitFor []berth.BookingStatus, wait time.Duration, changed <-chan struct{}) (*berth.Booking, error) {
	deadline := time.NewTimer(wait)
	defer deadline.Stop()
	delay, maxDelay := waitPollMin, waitPollMax
	if r.air.WatchComplete() {
		delay, maxDelay = waitPollSafety, waitPollSafety
	}
	next := time.NewTimer(delay)
	defer next.Stop()
	for {
		last := false
		select {
		case <-ctx.Done():
			return b, nil // the client is gone (or the server stopping)
		case <-deadline.C:
			last = true // one last read: answer with the status as it is
		case <-r.draining:
			last = true // the server is shutting down
		case <-changed:
		case <-next.C:
			delay = min(delay*3/2, maxDelay)
			next.Reset(delay)
		}
		nb, err := r.air.GetBooking(ctx, b.ID)
		switch {
		case err != nil && ctx.Err() != nil:
			return b, nil
		case err != nil:
			return nil, err
		}
		b = nb
		if last || slices.Contains(waitFor, b.Status) {
			return b, nil
		}
	}
}

func (r queryResolver) ListBookings(ctx context.Context, filter *generated.ModelBookingFilterInput, limit *int, nextToken *string) (*generated.ModelBookingConnection, error) {
	f, err := bookingFilter(filter)
	if err != nil {
		return nil, err
	}
	items, next, err := r.air.ListBookings(ctx, f, airline.PageRequest{Limit: limit, NextToken: nextToken})
	if err != nil {
		return nil, err
	}
	r.primeFlights(ctx, items)
	return bookingPage(items, next), nil
}

func (r queryResolver) GetBookingByStatus(ctx context.Context, customer *string, status *generated.ModelStringKeyConditionInput, sortDirection *generated.ModelSortDirection,
	filter *generated.ModelBookingFilterInput, limit *int, nextToken *string) (*generated.ModelBookingConnection, error) {
	key, err := statusKey(status)
	if err != nil {
		return nil, err
	}
	f, err := bookingFilter(filter)
	if err != nil {
		return nil, err
	}
	page := airline.PageRequest{Limit: limit, NextToken: nextToken, Desc: deref(sortDirection) == generated.ModelSortDirectionDesc}
	items, next, err := r.air.GetBookingByStatus(ctx, deref(customer), key, f, page)
	if err != nil {
		return nil, err
	}
	r.primeFlights(ctx, items)
	return bookingPage(items, next), nil
}

// primeFlights reads the flights of a page of bookings in one call and puts
// them in the request's flight loader, when the query selects
// items.outboundFlight. The loader alone batches only the loads that arrive
// within its wait, which a busy machine can split; priming makes one read
// per page certain. Errors are left to the loader, which reports them per
// booking.
func (r queryResolver) primeFlights(ctx context.Context, items []*berth.Booking) {
	l := requestFrom(ctx).flightLoader()
	if l == nil || len(items) < 2 || graphql.GetFieldContext(ctx) == nil || !selects(ctx, "items", "outboundFlight") {
		return
	}
	ids := make([]string, 0, len(items))
	for _, b := range items {
		if !slices.Contains(ids, b.ResourceID) {
			ids = append(ids, b.ResourceID)
		}
	}
	m, err := r.air.GetFlights(ctx, ids)
	if err != nil {
		return
	}
	for id, f := range m {
		l.Prime(id, f)
	}
}

// selects reports whether the current field's selection contains the path
// of field names, through fragments.
func selects(ctx context.Context, path ...string) bool {
	op := graphql.GetOperationContext(ctx)
	sel := graphql.GetFieldContext(ctx).Field.Selections
	for _, name := range path {
		var next ast.SelectionSet
		found := false
		for _, f := range graphql.CollectFields(op, sel, nil) {
			if f.Name == name {
				next, found = append(next, f.Selections...), true
			}
		}
		if !found {
			return false
		}
		sel = next
	}
	return true
}

func bookingPage(items []*berth.Booking, next *string) *generated.ModelBookingConnection {
	if items == nil {
		items = []*berth.Booking{}
	}
	return &generated.ModelBookingConnection{Items: items, NextToken: next}
}

func (r queryResolver) GetLoyalty(ctx context.Context, customer *string) (*berth.Loyalty, error) {
	l, err := r.air.Loyalty(ctx, deref(customer))
	if err != nil {
		return nil, err
	}
	return &l, nil
}

// ProcessBooking uses only the flight, the payment token and the
// idempotency key of the input; the key comes from the input or, failing
// that, from the Idempotency-Key header.
func (r mutationResolver) ProcessBooking(ctx context.Context, in generated.CreateBookingInput) (*berth.Booking, error) {
	key := deref(in.IdempotencyKey)
	if key == "" {
		key = requestFrom(ctx).idempotencyKey
	}
	return r.air.ProcessBooking(ctx, airline.BookingRequest{FlightID: in.BookingOutboundFlightID, PaymentToken: in.PaymentToken, IdempotencyKey: key})
}

func (r mutationResolver) CancelBooking(ctx context.Context, id string) (*berth.Booking, error) {
	return r.air.CancelBooking(ctx, id)
}

func (r mutationResolver) CreateBooking(ctx context.Context, in generated.CreateBookingInput) (*berth.Booking, error) {
	return r.air.CreateBooking(ctx, airline.AdminBookingInput{
		ID:               deref(in.ID),
		FlightID:         in.BookingOutboundFlightID,
		Customer:         deref(in.Customer),
		Status:           deref(in.Status),
		CheckedIn:        deref(in.CheckedIn),
		BookingReference: deref(in.BookingReference),
	})
}

func (r mutationResolver) UpdateBooking(ctx context.Context, in generated.UpdateBookingInput) (*berth.Booking, error) {
	return r.air.UpdateBooking(ctx, in.ID, airline.AdminBookingPatch{CheckedIn: in.CheckedIn, BookingReference: in.BookingReference, Status: in.Status})
}

func (r mutationResolver) DeleteBooking(ctx context.Context, in generated.DeleteBookingInput) (*berth.Booking, error) {
	return r.air.DeleteBooking(ctx, in.ID)
}

func (r mutationResolver) CreateCharge(ctx context.Context, amount int, currency string, token string, idempotencyKey *string) (*generated.Charge, error) {
	ch, err := r.air.Charges().Create(ctx, int64(amount), currency, token, deref(idempotencyKey))
	if err != nil {
		return nil, err
	}
	return &generated.Charge{ID: ch.ID, Amount: int(ch.Amount), Currency: ch.Currency, Status: string(ch.Status), CreatedAt: formatTime(ch.CreatedAt)}, nil
}

// OutboundFlight loads the booking's flight through the request's loader:
// the flights of every booking in a response are read in one batch. The
// booking was authorized when it was read, so its flight may be shown.
func (r bookingResolver) OutboundFlight(ctx context.Context, b *berth.Booking) (*berth.Flight, error) {
	if l := requestFrom(ctx).flightLoader(); l != nil {
		return l.Load(ctx, b.ResourceID)
	}
	m, err := r.air.GetFlights(ctx, []string{b.ResourceID})
	if err != nil {
		return nil, err
	}
	if f := m[b.ResourceID]; f != nil {
		return f, nil
	}
	return nil, berth.Errorf(berth.ENOTFOUND, "flight not found")
}

func (bookingResolver) CreatedAt(_ context.Context, b *berth.Booking) (*string, error) {
	return optTime(b.CreatedAt), nil
}

func (bookingResolver) BookingReference(_ context.Context, b *berth.Booking) (*string, error) {
	return optString(b.Reference), nil
}

// Batching of outboundFlight: how long the loader waits for more keys, and
// the most ids one batch reads.
const (
	flightBatchWait = time.Millisecond
	flightBatchMax  = 500
)

// newFlightLoader returns a per-request loader of flights by id.
func newFlightLoader(air *airline.Service) *dataloadgen.Loader[string, *berth.Flight] {
	return dataloadgen.NewLoader(func(ctx context.Context, ids []string) ([]*berth.Flight, []error) {
		out := make([]*berth.Flight, len(ids))
		errs := make([]error, len(ids))
		m, err := air.GetFlights(ctx, ids)
		for i, id := range ids {
			switch f := m[id]; {
			case err != nil:
				errs[i] = err
			case f == nil:
				errs[i] = berth.Errorf(berth.ENOTFOUND, "flight not found")
			default:
				out[i] = f
			}
		}
		return out, errs
	}, dataloadgen.WithWait(flightBatchWait), dataloadgen.WithBatchCapacity(flightBatchMax))
}
