package airline_test

import (
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/payment"
)

// Regression tests for the bugs the reliability harness found (see
// docs/RELIABILITY.md, "Bugs found").

// An Admin who cancels a createBooking booking with updateBooking gives its
// seat back; its ticket must not stay BOOKED, or the seat is sold twice.
func TestAdminCancelFreesTicket(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", fastRetry)
	f := r.flight(1, 1, 1000)
	b, err := r.svc.CreateBooking(r.admin, airline.AdminBookingInput{FlightID: f.ID, Customer: "alice", Status: berth.BookingConfirmed})
	if err != nil {
		t.Fatal(err)
	}
	st := berth.BookingCancelled
	if _, err := r.svc.UpdateBooking(r.admin, b.ID, airline.AdminBookingPatch{Status: &st}); err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CreateBooking(r.admin, airline.AdminBookingInput{FlightID: f.ID, Customer: "bob", Status: berth.BookingConfirmed}); err != nil {
		t.Fatal(err)
	}
	if err := r.check(faults.Options{Quiescent: true}).Err(); err != nil {
		t.Fatal(err)
	}
}

// cancelBooking of a booking made by createBooking (no charge, its own
// hold) cancels it and frees the seat instead of dead-lettering.
func TestCancelAdminBooking(t *testing.T) {
	t.Parallel()
	r := newRig(t, "", fastRetry)
	f := r.flight(1, 1, 1000)
	b, err := r.svc.CreateBooking(r.admin, airline.AdminBookingInput{FlightID: f.ID, Customer: "bob", Status: berth.BookingConfirmed})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.svc.CancelBooking(customer("bob"), b.ID); err != nil {
		t.Fatal(err)
	}
	r.drive(time.Time{})
	rep := r.check(faults.Options{Quiescent: true})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Dead) > 0 || rep.Sold != 0 || rep.ByStatus[berth.BookingCancelled] != 1 {
		t.Fatalf("after cancelBooking: %s", rep)
	}
}

// Concurrent retries of one request (same idempotency key) all get the
// same charge and the same booking, on both databases.
func TestConcurrentReplays(t *testing.T) {
	t.Parallel()
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			r := newRig(t, testdb.URL(t, d), fastRetry)
			f := r.flight(1, 5, 1000)
			alice := customer("alice")
			const n = 8
			charges, bookings := make([]string, n), make([]string, n)
			var wg sync.WaitGroup
			for i := range n {
				wg.Go(func() {
					ch, err := r.svc.Charges().Create(alice, 1000, "EUR", payment.TokenVisa, "charge-1")
					if err != nil {
						t.Errorf("createCharge %d: %v", i, err)
						return
					}
					charges[i] = ch.ID
				})
			}
			wg.Wait()
			for i := range n {
				wg.Go(func() {
					b, err := r.svc.ProcessBooking(alice, airline.BookingRequest{FlightID: f.ID, PaymentToken: charges[0], IdempotencyKey: "book-1"})
					if err != nil {
						t.Errorf("processBooking %d: %v", i, err)
						return
					}
					bookings[i] = b.ID
				})
			}
			wg.Wait()
			for i := range n {
				if charges[i] != charges[0] || bookings[i] != bookings[0] {
					t.Fatalf("one request, several results: charges %v, bookings %v", charges, bookings)
				}
			}
			r.drive(time.Time{})
			rep := r.check(faults.Options{Quiescent: true})
			if err := rep.Err(); err != nil || rep.Bookings != 1 || rep.Captured != 1000 {
				t.Fatalf("%v: %s", err, rep)
			}
		})
	}
}
