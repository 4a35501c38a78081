package airline

import (
	"context"

	"github.com/berthhq/berth"
)

// AdminBookingInput is createBooking's input (Admin only, kept from the
// original schema for compatibility). The booking takes a seat like any
// other but involves no payment; its paymentToken is informational.
type AdminBookingInput struct {
	ID               string
	FlightID         string
	Customer         string
	Status           berth.BookingStatus
	CheckedIn        bool
	BookingReference string
}

func adminHold(bookingID string) string { return "admin:" + bookingID }

// CreateBooking records a booking directly (Admin only): it takes a seat
// (SOLD_OUT if none is left) and starts no saga.
func (s *Service) CreateBooking(ctx context.Context, in AdminBookingInput) (*berth.Booking, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	switch {
	case in.ID != "" && !berth.IsID(in.ID):
		return nil, berth.Errorf(berth.EINVALID, "id must be a UUID; leave it out to have one assigned")
	case in.Customer == "" || len(in.Customer) > 200:
		return nil, berth.Errorf(berth.EINVALID, "customer (a subject id) is required")
	case in.Status != berth.BookingUnconfirmed && in.Status != berth.BookingConfirmed:
		return nil, berth.Errorf(berth.EINVALID, "status must be UNCONFIRMED or CONFIRMED")
	case len(in.BookingReference) > 20:
		return nil, berth.Errorf(berth.EINVALID, "bookingReference is limited to 20 characters")
	}
	if in.ID == "" {
		in.ID = berth.NewID()
	}
	b := &berth.Booking{ID: in.ID, ResourceID: in.FlightID, Customer: in.Customer, Quantity: 1, Status: in.Status,
		CheckedIn: in.CheckedIn, Reference: in.BookingReference, PaymentToken: adminHold(in.ID)}
	if b.Status == berth.BookingConfirmed && b.Reference == "" {
		b.Reference = berth.NewReference()
	}
	err := s.cfg.Store.Update(ctx, func(tx berth.Tx) error {
		f, err := tx.GetFlight(in.FlightID)
		if err != nil {
			return err
		}
		b.Currency = f.Currency
		if _, err := tx.Reserve(&berth.Hold{Key: adminHold(b.ID), ResourceID: f.ID, BookingID: b.ID, Quantity: 1}); err != nil {
			return err
		}
		if err := tx.CreateBooking(b); err != nil {
			return err
		}
		return tx.CreateTicket(&berth.Ticket{BookingID: b.ID, ResourceID: f.ID, Code: b.ID + "-1", Status: berth.TicketBooked})
	})
	if err != nil {
		return nil, err
	}
	return b, nil
}

// AdminBookingPatch is updateBooking's input: nil fields are unchanged.
type AdminBookingPatch struct {
	CheckedIn        *bool
	BookingReference *string
	Status           *berth.BookingStatus
}

// UpdateBooking changes a booking's check-in flag or reference (Admin
// only). Status changes go through processBooking and cancelBooking, which
// move seats and money; here only a booking made by createBooking may be
// confirmed or cancelled (cancelling gives its seat back).
func (s *Service) UpdateBooking(ctx context.Context, id string, p AdminBookingPatch) (*berth.Booking, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var b *berth.Booking
	err := s.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
		if b, err = tx.GetBooking(id); err != nil {
			return err
		}
		if p.CheckedIn != nil {
			b.CheckedIn = *p.CheckedIn
		}
		if p.BookingReference != nil {
			if len(*p.BookingReference) > 20 {
				return berth.Errorf(berth.EINVALID, "bookingReference is limited to 20 characters")
			}
			b.Reference = *p.BookingReference
		}
		if p.Status != nil && *p.Status != b.Status {
			if b.PaymentToken != adminHold(b.ID) {
				return berth.Errorf(berth.EINVALID, "the status of a paid booking changes only through cancelBooking")
			}
			switch *p.Status {
			case berth.BookingConfirmed:
				if b.Status != berth.BookingUnconfirmed {
					return berth.Errorf(berth.ECONFLICT, "only an UNCONFIRMED booking can be confirmed")
				}
				if b.Reference == "" {
					b.Reference = berth.NewReference()
				}
			case berth.BookingCancelled:
				if _, err := tx.Release(adminHold(b.ID)); err != nil {
					return err
				}
				// The seat is free again: its ticket must not stay BOOKED.
				if err := cancelTickets(tx, b.ID); err != nil {
					return err
				}
			default:
				return berth.Errorf(berth.EINVALID, "status can be set to CONFIRMED or CANCELLED")
			}
			b.Status = *p.Status
		}
		return tx.UpdateBooking(b)
	})
	if err != nil {
		return nil, err
	}
	s.watchers.signal(id)
	return b, nil
}

// DeleteBooking removes a booking (Admin only): a cancelled one, or one
// made by createBooking (whose seat is given back). Paid bookings are
// cancelled first, so that money and seats stay accounted for.
func (s *Service) DeleteBooking(ctx context.Context, id string) (*berth.Booking, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var b *berth.Booking
	err := s.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
		if b, err = tx.GetBooking(id); err != nil {
			return err
		}
		admin := b.PaymentToken == adminHold(b.ID)
		if !admin && b.Status != berth.BookingCancelled && b.Status != berth.BookingExpired {
			return berth.Errorf(berth.ECONFLICT, "cancel the booking before deleting it")
		}
		if admin {
			if _, err := tx.Release(adminHold(b.ID)); err != nil {
				return err
			}
		}
		return tx.DeleteBooking(id)
	})
	if err == nil {
		s.watchers.signal(id)
	}
	return b, err
}
