package faults_test

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/store"
)

func open(t *testing.T) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "f.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestProviderFaults(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	p := faults.NewProvider(payment.NewSimulated(db))
	ref, err := p.Authorize(ctx, payment.AuthorizeRequest{Key: "a", Token: payment.TokenVisa, Amount: 100, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	p.Inject(faults.Fault{Op: faults.OpCapture, Kind: faults.Transient, Times: 1})
	p.Inject(faults.Fault{Op: faults.OpCapture, Kind: faults.ReplyLost, Times: 1})
	if err := p.Capture(ctx, "c", ref, 100); berth.ErrorCode(err) != berth.EUNAVAILABLE {
		t.Fatalf("transient: %v", err)
	}
	if c, _, _ := payment.Ledger(ctx, db, []string{ref}); c != 0 {
		t.Fatalf("a transient failure captured %d", c)
	}
	if err := p.Capture(ctx, "c", ref, 100); berth.ErrorCode(err) != berth.EUNAVAILABLE {
		t.Fatalf("reply lost: %v", err)
	}
	if c, _, _ := payment.Ledger(ctx, db, []string{ref}); c != 100 {
		t.Fatalf("the lost reply's capture: %d", c)
	}
	if err := p.Capture(ctx, "c", ref, 100); err != nil {
		t.Fatalf("after the faults: %v", err)
	}
	p.Inject(faults.Fault{Op: faults.OpRefund, Kind: faults.Refuse})
	for range 2 {
		if err := p.Refund(ctx, "r", ref, 100); berth.ErrorCode(err) != berth.EPAYMENTDECLINED {
			t.Fatalf("refused: %v", err)
		}
	}
	p.Clear()
	p.Inject(faults.Fault{Op: faults.OpRefund, Kind: faults.Hang, Times: 1})
	hctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
	defer cancel()
	// A hang lasts until the caller gives up.
	if err := p.Refund(hctx, "r", ref, 100); !errors.Is(err, context.DeadlineExceeded) || hctx.Err() == nil {
		t.Fatalf("hang: %v (caller's context: %v)", err, hctx.Err())
	}
	p.SetDown(true)
	if err := p.Refund(ctx, "r", ref, 100); berth.ErrorCode(err) != berth.EUNAVAILABLE {
		t.Fatalf("down: %v", err)
	}
	p.SetDown(false)
	if err := p.Refund(ctx, "r", ref, 100); err != nil {
		t.Fatal(err)
	}
	if p.Calls(faults.OpCapture) != 3 || p.Failures(faults.OpCapture) != 2 || p.Fired() != 6 {
		t.Fatalf("calls %d, failures %d, fired %d", p.Calls(faults.OpCapture), p.Failures(faults.OpCapture), p.Fired())
	}
}

func TestStoreFaultsAndCrash(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	s := faults.NewStore(db)
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-01-01T08:00:00Z", ArrivalDate: "2027-01-01T10:00:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Available, f.Price, f.Currency = 2, 2, 100, "EUR"
	if err := s.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) }); err != nil {
		t.Fatal(err)
	}
	reserve := func(key string) error {
		return s.Update(ctx, func(tx berth.Tx) error {
			_, err := tx.Reserve(&berth.Hold{Key: key, ResourceID: f.ID, BookingID: key, Quantity: 1})
			return err
		})
	}
	s.Inject(faults.TxFault{Name: "reserve", Match: faults.OnReserve(), Times: 1})
	if err := reserve("a"); berth.ErrorCode(err) != berth.EUNAVAILABLE || s.Hits("reserve") != 1 {
		t.Fatalf("injected: %v", err)
	}
	if err := reserve("a"); err != nil {
		t.Fatal(err)
	}
	// A crash: the transaction in flight does not commit, nothing after it runs.
	s.Inject(faults.TxFault{Name: "crash", Match: faults.OnReserve(), Times: 1, Crash: true})
	if err := reserve("b"); !errors.Is(err, faults.ErrCrashed) || !s.Crashed() {
		t.Fatalf("crash: %v", err)
	}
	if err := s.View(ctx, func(berth.Tx) error { return nil }); !errors.Is(err, faults.ErrCrashed) {
		t.Fatalf("a view after the crash: %v", err)
	}
	s.Restart()
	var got *berth.Flight
	_ = s.View(ctx, func(tx berth.Tx) (err error) { got, err = tx.GetFlight(f.ID); return err })
	if got.Available != 1 {
		t.Fatalf("%d seats available: the crashed transaction committed", got.Available)
	}
}

// The checker sees what the sagas must never leave behind.
func TestCheckFindsViolations(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	db := open(t)
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-01-01T08:00:00Z", ArrivalDate: "2027-01-01T10:00:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Available, f.Price, f.Currency = 3, 3, 100, "EUR"
	if err := db.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) }); err != nil {
		t.Fatal(err)
	}
	rep, err := faults.Check(ctx, db, faults.Options{Quiescent: true})
	if err != nil || rep.Err() != nil {
		t.Fatalf("an empty flight: %v %v", err, rep.Err())
	}
	// A seat taken for no booking, and a CONFIRMED booking (made by an
	// Admin) without a seat or a ticket.
	err = db.Update(ctx, func(tx berth.Tx) error {
		if _, err := tx.Reserve(&berth.Hold{Key: "stray", ResourceID: f.ID, BookingID: "x", Quantity: 1}); err != nil {
			return err
		}
		return tx.CreateBooking(&berth.Booking{ID: berth.NewID(), ResourceID: f.ID, Customer: "alice", Quantity: 1,
			Status: berth.BookingConfirmed, Reference: "ABCDEF", PaymentToken: "admin:x", Currency: "EUR"})
	})
	if err != nil {
		t.Fatal(err)
	}
	rep, err = faults.Check(ctx, db, faults.Options{Quiescent: true})
	if err != nil {
		t.Fatal(err)
	}
	msg := rep.Err().Error()
	for _, want := range []string{"1 seats sold but bookings hold 0", "CONFIRMED booking", "seat held false, 0 BOOKED ticket(s)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the report lacks %q:\n%s", want, msg)
		}
	}
}
