package airline

import (
	"context"
	"encoding/json"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// Saga names.
const (
	ProcessBooking = "processBooking"
	CancelBooking  = "cancelBooking"
)

// State names of the processBooking saga (kept from the original).
const (
	StateReserveFlight          = "Reserve Flight"
	StateReserveBooking         = "Reserve Booking"
	StateCollectPayment         = "Collect Payment"
	StateConfirmBooking         = "Confirm Booking"
	StateNotifyBookingConfirmed = "Notify Booking Confirmed"
	StateRefundPayment          = "Refund Payment"
	StateCancelBooking          = "Cancel Booking"
	StateReleaseFlightSeat      = "Release Flight Seat"
	StateNotifyBookingFailed    = "Notify Booking Failed"
	StateNotifyBookingCancelled = "Notify Booking Cancelled"
)

// BookingState is the working state of the booking sagas.
type BookingState struct {
	BookingID string `json:"bookingId"`
	FlightID  string `json:"flightId"`
	ChargeID  string `json:"chargeId"`
	Customer  string `json:"customer"`
	Price     int64  `json:"price"`
	Currency  string `json:"currency"`
	// HoldKey is the key of the seat hold this booking's processBooking
	// execution takes: only that hold is ever released.
	HoldKey string `json:"holdKey"`
	// Reference is assigned by Confirm Booking.
	Reference string `json:"reference,omitempty"`
	// Undo is the charge status reached by Refund Payment's call.
	Undo     berth.ChargeStatus `json:"undo,omitempty"`
	Refunded int64              `json:"refunded,omitempty"`
}

type run = saga.Run[BookingState]

func (s *Service) processBookingSaga() *saga.Definition[BookingState] {
	retry := s.cfg.StepRetry
	return &saga.Definition[BookingState]{
		Name:      ProcessBooking,
		Deadline:  s.cfg.HoldTime,
		Committed: s.committed,
		Steps: []saga.Step[BookingState]{
			{Action: saga.Action[BookingState]{Name: StateReserveFlight, Retry: retry, Tx: s.reserveFlight}},
			{Action: saga.Action[BookingState]{Name: StateReserveBooking, Retry: retry, Tx: s.reserveBooking}},
			{Action: saga.Action[BookingState]{Name: StateCollectPayment, Retry: retry, Call: s.collectPaymentCall, Tx: s.collectPaymentTx}},
			{Action: saga.Action[BookingState]{Name: StateConfirmBooking, Retry: retry, Tx: s.confirmBooking}},
			{Action: saga.Action[BookingState]{Name: StateNotifyBookingConfirmed, Retry: retry, Tx: s.notify(berth.EventBookingConfirmed, "confirmed")}, NoCompensate: true},
		},
		// Every failure runs the whole chain: each compensation is idempotent
		// and does nothing when there is nothing to undo (a seat this
		// execution never took is never released), and the chain always
		// voids the authorization and cancels the booking row, which exists
		// from the request on.
		Compensation: []saga.Action[BookingState]{
			{Name: StateRefundPayment, Retry: retry, Call: s.refundCall, Tx: s.refundTx},
			{Name: StateCancelBooking, Retry: retry, Tx: s.cancelBookingTx},
			{Name: StateReleaseFlightSeat, Retry: retry, Tx: s.releaseSeat},
			{Name: StateNotifyBookingFailed, Retry: retry, Tx: s.notify(berth.EventBookingFailed, "cancelled")},
		},
	}
}

// cancelBookingSaga cancels a confirmed booking at its owner's request.
// Once the refund is made there is no way back: every step is retried and
// then dead-lettered for an operator, never compensated.
func (s *Service) cancelBookingSaga() *saga.Definition[BookingState] {
	retry := s.cfg.StepRetry
	return &saga.Definition[BookingState]{
		Name:      CancelBooking,
		Committed: s.committed,
		Steps: []saga.Step[BookingState]{
			{Action: saga.Action[BookingState]{Name: StateRefundPayment, Retry: retry, Call: s.refundCall, Tx: s.refundTx}, NoCompensate: true},
			{Action: saga.Action[BookingState]{Name: StateCancelBooking, Retry: retry, Tx: s.cancelBookingTx}, NoCompensate: true},
			{Action: saga.Action[BookingState]{Name: StateReleaseFlightSeat, Retry: retry, Tx: s.releaseSeat}, NoCompensate: true},
			{Action: saga.Action[BookingState]{Name: StateNotifyBookingCancelled, Retry: retry, Tx: s.notify(berth.EventBookingCancelled, "cancelled")}, NoCompensate: true},
		},
	}
}

// reserveFlight takes one seat with the guarded decrement, keyed by this
// execution: a retry or a takeover never takes a second seat.
func (s *Service) reserveFlight(ctx context.Context, tx berth.Tx, r *run) error {
	_, err := tx.Reserve(&berth.Hold{Key: r.State.HoldKey, ResourceID: r.State.FlightID, BookingID: r.State.BookingID, Quantity: 1})
	if berth.ErrorCode(err) == berth.ESOLDOUT {
		return berth.Errorf(berth.ESOLDOUT, "the flight is sold out")
	}
	return err
}

// reserveBooking attaches the reserved seat to the booking as its ticket,
// once per execution.
func (s *Service) reserveBooking(ctx context.Context, tx berth.Tx, r *run) error {
	b, err := tx.GetBooking(r.State.BookingID)
	if err != nil {
		return err
	}
	if b.Status != berth.BookingUnconfirmed {
		return berth.Errorf(berth.ECONFLICT, "booking is %s, not UNCONFIRMED", b.Status)
	}
	tickets, err := tx.ListTickets(b.ID)
	if err != nil || len(tickets) > 0 {
		return err
	}
	return tx.CreateTicket(&berth.Ticket{BookingID: b.ID, ResourceID: b.ResourceID, Code: b.ID + "-1", Status: berth.TicketBooked})
}

func (s *Service) charge(ctx context.Context, id string) (*berth.Charge, error) {
	var ch *berth.Charge
	err := s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) { ch, err = tx.GetCharge(id); return err })
	return ch, err
}

// collectPaymentCall captures exactly the price the server computed when
// the booking was made, never an amount from the client.
func (s *Service) collectPaymentCall(ctx context.Context, r *run) error {
	ch, err := s.charge(ctx, r.State.ChargeID)
	if err != nil {
		return err
	}
	if ch.Status == berth.ChargeCaptured {
		return nil
	}
	return s.charges.Capture(ctx, r.Key("capture"), ch, r.State.Price)
}

func (s *Service) collectPaymentTx(ctx context.Context, tx berth.Tx, r *run) error {
	ch, err := tx.GetCharge(r.State.ChargeID)
	if err != nil {
		return err
	}
	if ch.Status == berth.ChargeCaptured {
		return nil
	}
	ch.Status, ch.Captured = berth.ChargeCaptured, r.State.Price
	if err := tx.UpdateCharge(ch); err != nil {
		return err
	}
	return s.publish(tx, r, berth.EventPaymentCaptured, map[string]any{"chargeId": ch.ID, "amount": ch.Captured, "currency": ch.Currency})
}

func (s *Service) confirmBooking(ctx context.Context, tx berth.Tx, r *run) error {
	b, err := tx.GetBooking(r.State.BookingID)
	if err != nil {
		return err
	}
	if b.Status != berth.BookingUnconfirmed {
		return berth.Errorf(berth.ECONFLICT, "booking is %s, not UNCONFIRMED", b.Status)
	}
	b.Status = berth.BookingConfirmed
	if b.Reference == "" {
		b.Reference = berth.NewReference() // a collision fails the step, whose retry draws another
	}
	r.State.Reference = b.Reference
	return tx.UpdateBooking(b)
}

// refundCall gives the money back: void if only authorized, refund if
// captured (also when the capture happened but its reply was lost).
func (s *Service) refundCall(ctx context.Context, r *run) error {
	if r.State.ChargeID == adminHold(r.State.BookingID) {
		return nil // made by createBooking: nothing was paid
	}
	ch, err := s.charge(ctx, r.State.ChargeID)
	if err != nil {
		return err
	}
	status, refunded, err := s.charges.Undo(ctx, r.Key("refund"), ch, r.State.Price)
	if err != nil {
		return err
	}
	r.State.Undo, r.State.Refunded = status, refunded
	return nil
}

func (s *Service) refundTx(ctx context.Context, tx berth.Tx, r *run) error {
	if r.State.ChargeID == adminHold(r.State.BookingID) {
		return nil // made by createBooking: nothing was paid
	}
	ch, err := tx.GetCharge(r.State.ChargeID)
	if err != nil {
		return err
	}
	if ch.Status == r.State.Undo || ch.Status == berth.ChargeFailed {
		return nil
	}
	typ := berth.EventPaymentVoided
	switch r.State.Undo {
	case berth.ChargeRefunded:
		typ = berth.EventPaymentRefunded
		if ch.Captured == 0 {
			ch.Captured = r.State.Refunded // the capture's reply was lost
		}
		ch.Refunded = r.State.Refunded
	case berth.ChargeVoided:
	default:
		return nil
	}
	ch.Status = r.State.Undo
	if err := tx.UpdateCharge(ch); err != nil {
		return err
	}
	return s.publish(tx, r, typ, map[string]any{"chargeId": ch.ID, "amount": ch.Refunded, "currency": ch.Currency})
}

func (s *Service) cancelBookingTx(ctx context.Context, tx berth.Tx, r *run) error {
	b, err := tx.GetBooking(r.State.BookingID)
	if err != nil {
		return err
	}
	if b.Status == berth.BookingCancelled {
		return nil
	}
	b.Status = berth.BookingCancelled
	if err := tx.UpdateBooking(b); err != nil {
		return err
	}
	return cancelTickets(tx, b.ID)
}

// cancelTickets marks the booking's BOOKED tickets CANCELED.
func cancelTickets(tx berth.Tx, bookingID string) error {
	tickets, err := tx.ListTickets(bookingID)
	if err != nil {
		return err
	}
	for _, t := range tickets {
		if t.Status == berth.TicketBooked {
			t.Status = berth.TicketCanceled
			if err := tx.UpdateTicket(t); err != nil {
				return err
			}
		}
	}
	return nil
}

// releaseSeat gives back the seat only if this booking's execution took it.
func (s *Service) releaseSeat(ctx context.Context, tx berth.Tx, r *run) error {
	released, err := tx.Release(r.State.HoldKey)
	if err != nil || !released {
		return err
	}
	return s.publish(tx, r, berth.EventSeatReleased, map[string]any{"flightId": r.State.FlightID})
}

// notify publishes the booking's outcome; webhooks and loyalty react to it.
func (s *Service) notify(typ, status string) func(context.Context, berth.Tx, *run) error {
	return func(ctx context.Context, tx berth.Tx, r *run) error {
		detail := map[string]any{
			"bookingId": r.State.BookingID, "customer": r.State.Customer, "flightId": r.State.FlightID,
			"price": r.State.Price, "currency": r.State.Currency, "Booking": map[string]any{"Status": status},
			"status": status, "bookingReference": r.State.Reference,
		}
		if r.Execution.Error != "" {
			detail["reason"] = r.Execution.Error
		}
		return s.publish(tx, r, typ, detail)
	}
}

func (s *Service) publish(tx berth.Tx, r *run, typ string, detail map[string]any) error {
	b, err := json.Marshal(detail)
	if err != nil {
		return err
	}
	// The event id is derived from the execution and type, so it is
	// unique: publishing twice would fail rather than duplicate.
	return s.cfg.Bus.Publish(tx, &berth.Event{
		ID: r.Execution.ID + ":" + typ, Type: typ, Source: Source, Who: berth.Customer(r.State.Customer),
		Subject: r.State.BookingID, Detail: b,
	})
}
