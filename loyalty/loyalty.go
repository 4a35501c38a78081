// Package loyalty keeps the points ledger. It is fed by booking events
// through durable jobs: BookingConfirmed earns the captured amount in points,
// BookingCancelled revokes them. Both are idempotent by booking id, so a
// re-delivered event has no second effect.
package loyalty

import (
	"context"
	"encoding/json"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// BookingDetail is the part of a booking event's detail loyalty reads.
type BookingDetail struct {
	BookingID string `json:"bookingId"`
	Customer  string `json:"customer"`
	Price     int64  `json:"price"`
}

// Subscribe registers the ledger's event handlers on bus.
func Subscribe(bus *saga.Bus) {
	bus.Subscribe("loyalty", []string{berth.EventBookingConfirmed, berth.EventBookingCancelled}, saga.RetryPolicy{},
		func(ctx context.Context, tx berth.Tx, ev *berth.Event) error {
			var d BookingDetail
			if err := json.Unmarshal(ev.Detail, &d); err != nil || d.BookingID == "" || d.Customer == "" {
				return berth.Errorf(berth.EINVALID, "loyalty: event %s has no booking detail", ev.ID)
			}
			// Earn and revoke are separate entries, so they net out whatever
			// order their jobs run in. Only confirmed bookings are cancelled.
			kind := berth.LoyaltyEarn
			if ev.Type == berth.EventBookingCancelled {
				kind = berth.LoyaltyRevoke
			}
			_, err := tx.AddLoyaltyEntry(&berth.LoyaltyEntry{BookingID: d.BookingID, Customer: d.Customer, Kind: kind, Points: d.Price})
			return err
		})
}

// Get returns the customer's loyalty.
func Get(ctx context.Context, s berth.Store, customer string) (berth.Loyalty, error) {
	var pts int64
	err := s.View(ctx, func(tx berth.Tx) (err error) { pts, err = tx.LoyaltyPoints(customer); return err })
	return berth.NewLoyalty(customer, pts), err
}
