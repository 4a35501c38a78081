package main

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

// TestCrashRecovery kills the server with SIGKILL while 20 bookings are in
// their sagas, restarts it on the same data, and checks every invariant:
// every execution ends, no seat is lost or sold twice, and the money
// captured minus refunded equals the prices of the confirmed bookings.
func TestCrashRecovery(t *testing.T) {
	dir := t.TempDir()
	s := startServer(t, dir, "--payment-failure-rate", "0.3", "--step-backoff", "50ms")
	admin := s.token("admin")
	var f flight
	s.must(s.gql(admin, `mutation { createFlight(input: {departureDate: "2027-02-01T08:00:00Z", departureAirportCode: "LGW",
		departureAirportName: "London Gatwick", departureCity: "London", departureLocale: "Europe/London",
		arrivalDate: "2027-02-01T10:15:00Z", arrivalAirportCode: "MAD", arrivalAirportName: "Madrid Barajas",
		arrivalCity: "Madrid", arrivalLocale: "Europe/Madrid", ticketPrice: 7500, ticketCurrency: "EUR",
		flightNumber: 4242, seatCapacity: 10}) { `+flightFields+` } }`, nil), "createFlight", &f)

	const n = 20
	tokens := make([]string, n)
	charges := make([]string, n)
	for i := range tokens {
		tokens[i] = s.token(fmt.Sprintf("crash-%02d", i), "customer")
		// A transient failure of the simulated provider at authorization is
		// an UNAVAILABLE error: try again, as a client would.
		for charges[i] == "" {
			r := s.gql(tokens[i], `mutation { createCharge(amount: 7500, currency: "EUR", token: "tok_visa") { id } }`, nil)
			if r.code() == "" {
				var c struct{ ID string }
				s.must(r, "createCharge", &c)
				charges[i] = c.ID
			}
		}
	}
	ids := make([]string, n)
	var wg sync.WaitGroup
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ids[i] = s.book(tokens[i], f.ID, charges[i]).ID
		}()
	}
	wg.Wait()
	// Kill it mid-saga: once a few bookings are through, while others are
	// still between steps.
	db := openData(t, dir)
	ctx := context.Background()
	eventually(t, "the first confirmations", func() bool {
		var bs []*berth.Booking
		_ = db.View(ctx, func(tx berth.Tx) (err error) {
			bs, err = tx.ListBookings(berth.BookingQuery{Page: berth.Page{Limit: 100}})
			return err
		})
		done := 0
		for _, b := range bs {
			if b.Status != berth.BookingUnconfirmed {
				done++
			}
		}
		return done >= 3
	})
	s.kill()
	var inFlight int
	_ = db.View(ctx, func(tx berth.Tx) (err error) { inFlight, err = tx.CountExecutions(berth.ExecutionRunning); return err })
	t.Logf("killed with %d executions running", inFlight)
	s = startServer(t, dir)
	eventually(t, "every execution to end", func() bool {
		running := 0
		_ = db.View(ctx, func(tx berth.Tx) (err error) { running, err = tx.CountExecutions(berth.ExecutionRunning); return err })
		return running == 0
	})
	var dead int
	_ = db.View(ctx, func(tx berth.Tx) (err error) { dead, err = tx.CountExecutions(berth.ExecutionDead); return err })
	if dead != 0 {
		t.Fatalf("%d executions dead-lettered", dead)
	}
	confirmed := 0
	var prices, captured, refunded int64
	var refs []string
	err := db.View(ctx, func(tx berth.Tx) error {
		for _, id := range ids {
			b, err := tx.GetBooking(id)
			if err != nil {
				return err
			}
			c, err := tx.GetCharge(b.PaymentToken)
			if err != nil {
				return err
			}
			refs = append(refs, c.ProviderRef)
			captured += c.Captured
			refunded += c.Refunded
			switch b.Status {
			case berth.BookingConfirmed:
				confirmed++
				prices += b.Price
			case berth.BookingCancelled:
			default:
				t.Errorf("booking %s is %s", b.ID, b.Status)
			}
		}
		fl, err := tx.GetFlight(f.ID)
		if err != nil {
			return err
		}
		if sold := fl.Capacity - fl.Available; sold != confirmed {
			t.Errorf("seats sold %d, confirmed bookings %d", sold, confirmed)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if confirmed != 10 {
		t.Errorf("confirmed %d bookings on a 10-seat flight with 20 customers, want 10", confirmed)
	}
	if captured-refunded != prices {
		t.Errorf("berth's records: captured %d - refunded %d != confirmed prices %d", captured, refunded, prices)
	}
	pc, pr, err := payment.Ledger(ctx, db, refs)
	if err != nil {
		t.Fatal(err)
	}
	if pc-pr != prices {
		t.Errorf("provider's ledger: captured %d - refunded %d != confirmed prices %d", pc, pr, prices)
	}
	t.Logf("after kill -9 and restart: %d confirmed, %d cancelled, captured %d, refunded %d (%s)", confirmed, n-confirmed, pc, pr, time.Now().Format(time.TimeOnly))
}
