package airline

import (
	"context"
	"strings"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// BookingRequest is processBooking's input. Any customer, status or id the
// client sends is ignored by the transport: identity comes from the token.
type BookingRequest struct {
	FlightID       string
	PaymentToken   string // a charge id from createCharge
	IdempotencyKey string // optional: the same key returns the same booking
}

func (s *Service) invalid(err error) error {
	if s.cfg.OnInvalidRequest != nil && berth.IsBusiness(err) {
		s.cfg.OnInvalidRequest()
	}
	return err
}

// ProcessBooking starts the booking saga and returns the booking,
// UNCONFIRMED, with its id. Errors: UNAUTHENTICATED, FORBIDDEN (API key),
// INVALID (malformed input, a paymentToken that is not the caller's
// authorized charge, currency mismatch), NOT_FOUND (flight), CONFLICT
// (paymentToken already used; idempotency key reused for another request),
// PAYMENT_DECLINED (authorized amount below the price). Nothing is written
// when it fails.
func (s *Service) ProcessBooking(ctx context.Context, req BookingRequest) (*berth.Booking, error) {
	a, err := berth.RequireUser(ctx)
	if err != nil {
		return nil, s.invalid(err)
	}
	req.PaymentToken = strings.TrimSpace(req.PaymentToken)
	switch {
	case !berth.IsID(req.FlightID):
		return nil, s.invalid(berth.Errorf(berth.EINVALID, "bookingOutboundFlightId must be a flight id"))
	case req.PaymentToken == "" || len(req.PaymentToken) > 100:
		return nil, s.invalid(berth.Errorf(berth.EINVALID, "paymentToken must be the id of a charge from createCharge"))
	case len(req.IdempotencyKey) > 200:
		return nil, s.invalid(berth.Errorf(berth.EINVALID, "the idempotency key is limited to 200 characters"))
	}
	var out *berth.Booking
	var started *berth.Execution
	err = s.cfg.Store.Update(ctx, func(tx berth.Tx) error {
		out, started = nil, nil
		if req.IdempotencyKey != "" {
			b, err := tx.GetBookingByIdempotencyKey(a.Subject, req.IdempotencyKey)
			if err == nil {
				if b.ResourceID != req.FlightID || b.PaymentToken != req.PaymentToken {
					return berth.Errorf(berth.ECONFLICT, "this idempotency key was used for a different booking request")
				}
				out = b
				return nil
			} else if berth.ErrorCode(err) != berth.ENOTFOUND {
				return err
			}
		}
		f, err := tx.GetFlight(req.FlightID)
		if err != nil {
			return err
		}
		ch, err := tx.GetCharge(req.PaymentToken)
		if berth.ErrorCode(err) == berth.ENOTFOUND || (err == nil && ch.Customer != a.Subject) {
			return berth.Errorf(berth.EINVALID, "paymentToken does not name a charge of yours; create one with createCharge")
		} else if err != nil {
			return err
		}
		switch {
		case ch.Status == berth.ChargeFailed:
			return berth.Errorf(berth.EPAYMENTDECLINED, "the charge was declined; create a new one")
		case ch.BookingID != "" || ch.Status != berth.ChargeAuthorized:
			return berth.Errorf(berth.ECONFLICT, "this paymentToken was already used for a booking")
		case ch.Currency != f.Currency:
			return berth.Errorf(berth.EINVALID, "the charge is in %s but the flight is priced in %s", ch.Currency, f.Currency)
		case ch.Amount < f.Price:
			return berth.Errorf(berth.EPAYMENTDECLINED, "the authorized amount %d is less than the ticket price %d", ch.Amount, f.Price)
		}
		b := &berth.Booking{
			ID: berth.NewID(), ResourceID: f.ID, Customer: a.Subject, Quantity: 1, Status: berth.BookingUnconfirmed,
			PaymentToken: ch.ID, Price: f.Price, Currency: f.Currency, IdempotencyKey: req.IdempotencyKey, ExecutionID: berth.NewID(),
		}
		if err := tx.CreateBooking(b); err != nil {
			return err
		}
		ch.BookingID = b.ID
		if err := tx.UpdateCharge(ch); err != nil {
			return err
		}
		st := BookingState{BookingID: b.ID, FlightID: f.ID, ChargeID: ch.ID, Customer: a.Subject, Price: b.Price, Currency: b.Currency,
			HoldKey: b.ExecutionID + ":seat"}
		x, err := s.book.Start(tx, st, saga.StartOptions{ID: b.ExecutionID, Correlation: b.ID, Runner: s.cfg.Engine, Input: map[string]any{
			"bookingOutboundFlightId": f.ID, "paymentToken": ch.ID, "customer": a.Subject}})
		if err != nil {
			return err
		}
		started = x
		if err := s.publish(tx, &run{Execution: x, State: st}, berth.EventBookingRequested, map[string]any{
			"bookingId": b.ID, "customer": a.Subject, "flightId": f.ID, "price": b.Price, "currency": b.Currency}); err != nil {
			return err
		}
		out = b
		return nil
	})
	if err != nil && req.IdempotencyKey != "" && berth.ErrorCode(err) == berth.ECONFLICT {
		// A concurrent request with the same key committed first (on
		// PostgreSQL both can pass the key lookup): answer as a replay.
		var b *berth.Booking
		verr := s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) {
			b, err = tx.GetBookingByIdempotencyKey(a.Subject, req.IdempotencyKey)
			return err
		})
		if verr == nil && b.ResourceID == req.FlightID && b.PaymentToken == req.PaymentToken {
			return b, nil
		}
	}
	if err != nil {
		return nil, s.invalid(err)
	}
	if started != nil {
		s.cfg.Engine.Handoff(ctx, started) // this process runs the saga at once
	}
	return out, nil
}

// GetBooking returns a booking its owner or Admin may read; for anyone else
// it is NOT_FOUND, exactly like a missing one.
func (s *Service) GetBooking(ctx context.Context, id string) (*berth.Booking, error) {
	a, err := berth.RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	var b *berth.Booking
	err = s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) { b, err = tx.GetBooking(id); return err })
	if err != nil {
		return nil, err
	}
	if !a.CanRead(b.Customer) {
		return nil, berth.Errorf(berth.ENOTFOUND, "booking not found")
	}
	return b, nil
}

// BookingFields are the fields a booking filter may name.
var BookingFields = map[string]bool{"id": true, "status": true, "paymentToken": true, "checkedIn": true, "customer": true,
	"createdAt": true, "bookingReference": true, "bookingOutboundFlightId": true}

func bookingField(b *berth.Booking) func(string) any {
	return func(f string) any {
		switch f {
		case "id":
			return b.ID
		case "status":
			return string(b.Status)
		case "paymentToken":
			return b.PaymentToken
		case "checkedIn":
			return b.CheckedIn
		case "customer":
			return b.Customer
		case "createdAt":
			return b.CreatedAt.Format("2006-01-02T15:04:05.000Z")
		case "bookingReference":
			return b.Reference
		case "bookingOutboundFlightId":
			return b.ResourceID
		}
		return nil
	}
}

// StatusKey is a key condition on a booking's status (getBookingByStatus).
type StatusKey struct {
	Eq, Le, Lt, Ge, Gt, BeginsWith *string
	Between                        []string
}

// ListBookings lists bookings: Admin sees all, a customer only their own.
func (s *Service) ListBookings(ctx context.Context, filter *Filter, p PageRequest) ([]*berth.Booking, *string, error) {
	a, err := berth.RequireUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := filter.Validate(BookingFields); err != nil {
		return nil, nil, err
	}
	q := berth.BookingQuery{}
	if !a.IsAdmin() {
		q.Customer = a.Subject // the customer's own, through the customer index
	}
	return s.listBookings(ctx, q, filter, p)
}

// GetBookingByStatus queries the ByCustomerStatus index. A customer may
// only name themselves (anything else is an empty page); Admin anyone.
func (s *Service) GetBookingByStatus(ctx context.Context, customer string, key *StatusKey, filter *Filter, p PageRequest) ([]*berth.Booking, *string, error) {
	a, err := berth.RequireUser(ctx)
	if err != nil {
		return nil, nil, err
	}
	if err := filter.Validate(BookingFields); err != nil {
		return nil, nil, err
	}
	if customer == "" {
		customer = a.Subject
	}
	if !a.CanRead(customer) {
		return nil, nil, nil
	}
	q := berth.BookingQuery{Customer: customer}
	if key != nil {
		switch {
		case key.Eq != nil:
			q.StatusFrom, q.StatusTo = *key.Eq, *key.Eq
		case key.BeginsWith != nil:
			q.StatusFrom, q.StatusTo = *key.BeginsWith, *key.BeginsWith+"\uffff"
		case len(key.Between) == 2:
			q.StatusFrom, q.StatusTo = key.Between[0], key.Between[1]
		case key.Ge != nil:
			q.StatusFrom = *key.Ge
		case key.Le != nil:
			q.StatusTo = *key.Le
		case key.Gt != nil:
			// strictly above: filter out equality after the range read (a
			// bound ending in a NUL byte is refused by PostgreSQL)
			q.StatusFrom = *key.Gt
			gt := *key.Gt
			filter = &Filter{And: []*Filter{filter}, Fields: map[string]*Cond{"status": {Ne: gt}}}
		case key.Lt != nil:
			// strictly below: filter out equality after the range read
			q.StatusTo = *key.Lt
			lt := *key.Lt
			filter = &Filter{And: []*Filter{filter}, Fields: map[string]*Cond{"status": {Ne: lt}}}
		}
	}
	return s.listBookings(ctx, q, filter, p)
}

func (s *Service) listBookings(ctx context.Context, q berth.BookingQuery, filter *Filter, p PageRequest) ([]*berth.Booking, *string, error) {
	page, err := p.parse()
	if err != nil {
		return nil, nil, err
	}
	var out []*berth.Booking
	var next *berth.Cursor
	err = s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) {
		out, next, err = scan(page, func(pg berth.Page) ([]*berth.Booking, error) {
			q.Page = pg
			return tx.ListBookings(q)
		}, func(b *berth.Booking) berth.Cursor {
			if q.Customer != "" {
				return berth.Cursor{Key: string(b.Status), ID: b.ID}
			}
			return berth.Cursor{ID: b.ID}
		}, func(b *berth.Booking) bool { return filter.Match(bookingField(b)) })
		return err
	})
	return out, EncodeToken(next), err
}

// CancelBooking cancels a confirmed booking for its owner or Admin: refund,
// cancel, release the seat, notify; loyalty points are revoked by the
// BookingCancelled event. It waits up to CancelWait for the saga and
// returns the booking as it then is. Another customer's booking is
// NOT_FOUND; an UNCONFIRMED one is CONFLICT (still being processed).
func (s *Service) CancelBooking(ctx context.Context, id string) (*berth.Booking, error) {
	b, err := s.GetBooking(ctx, id)
	if err != nil {
		return nil, err
	}
	switch b.Status {
	case berth.BookingCancelled, berth.BookingExpired:
		return b, nil
	case berth.BookingUnconfirmed:
		return nil, berth.Errorf(berth.ECONFLICT, "the booking is still being processed; try again when it is confirmed")
	}
	xid := "cancel:" + b.ID
	var started *berth.Execution
	err = s.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
		started = nil
		if _, err := tx.GetExecution(xid); err == nil {
			return nil // already cancelling
		} else if berth.ErrorCode(err) != berth.ENOTFOUND {
			return err
		}
		hold := b.ExecutionID + ":seat"
		if b.PaymentToken == adminHold(b.ID) {
			hold = adminHold(b.ID) // made by createBooking: its own hold, no charge
		}
		st := BookingState{BookingID: b.ID, FlightID: b.ResourceID, ChargeID: b.PaymentToken, Customer: b.Customer, Price: b.Price,
			Currency: b.Currency, HoldKey: hold}
		started, err = s.cancel.Start(tx, st, saga.StartOptions{ID: xid, Correlation: b.ID, Runner: s.cfg.Engine, Input: map[string]any{"bookingId": b.ID,
			"requestedBy": berth.ActorFromContext(ctx).Subject}})
		return err
	})
	if err != nil {
		return nil, err
	}
	s.cfg.Engine.Handoff(ctx, started)
	wctx, cancel := context.WithTimeout(ctx, s.cfg.CancelWait)
	defer cancel()
	x, _ := saga.Wait(wctx, s.cfg.Store, xid)
	if x != nil && x.Status == berth.ExecutionDead {
		return nil, berth.Errorf(berth.EUNAVAILABLE, "the refund could not be completed; the cancellation (execution %s) is queued for an operator", xid)
	}
	return s.GetBooking(ctx, id)
}

// Execution returns the saga execution that processes a booking and its
// history, for Admin. which is ProcessBooking or CancelBooking.
func (s *Service) Execution(ctx context.Context, bookingID, which string) (*berth.Execution, []*berth.HistoryEntry, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, nil, err
	}
	var x *berth.Execution
	var h []*berth.HistoryEntry
	err := s.cfg.Store.View(ctx, func(tx berth.Tx) error {
		id := "cancel:" + bookingID
		if which != CancelBooking {
			b, err := tx.GetBooking(bookingID)
			if err != nil {
				return err
			}
			id = b.ExecutionID
		}
		var err error
		if x, err = tx.GetExecution(id); err != nil {
			return err
		}
		h, err = tx.ListHistory(id)
		return err
	})
	return x, h, err
}

// Loyalty returns a customer's loyalty; customers may only ask for their
// own (customer "" means the caller), Admin for anyone.
func (s *Service) Loyalty(ctx context.Context, customer string) (berth.Loyalty, error) {
	a, err := berth.RequireUser(ctx)
	if err != nil {
		return berth.Loyalty{}, err
	}
	if customer == "" {
		customer = a.Subject
	}
	if !a.CanRead(customer) {
		return berth.Loyalty{}, berth.Errorf(berth.EFORBIDDEN, "you may only read your own loyalty")
	}
	var pts int64
	err = s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) { pts, err = tx.LoyaltyPoints(customer); return err })
	return berth.NewLoyalty(customer, pts), err
}
