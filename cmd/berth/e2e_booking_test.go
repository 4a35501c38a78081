package main

import (
	"context"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

// openData opens the server's database from the test (WAL allows it while
// the server runs) to check what the API does not show.
func openData(t *testing.T, dir string) *store.DB {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + filepath.Join(dir, "berth.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func TestHappyPath(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	alice := s.token("alice")
	admin := s.token("admin")
	f := s.flights(alice)[1830]
	if f.SeatCapacity != 10 || f.TicketPrice != 10000 {
		t.Fatalf("demo flight 1830: %+v", f)
	}
	ch := s.charge(alice, 10000, "tok_visa")
	b := s.book(alice, f.ID, ch)
	if b.Status != "UNCONFIRMED" || b.ID == "" {
		t.Fatalf("processBooking returned %+v", b)
	}
	b = s.waitBooking(alice, b.ID)
	if b.Status != "CONFIRMED" || b.BookingReference == nil || len(*b.BookingReference) != 6 {
		t.Fatalf("booking after the saga: %+v", b)
	}
	if got := s.flight(alice, f.ID).SeatCapacity; got != 9 {
		t.Fatalf("seatCapacity = %d, want 9", got)
	}
	eventually(t, "loyalty points", func() bool {
		var l struct{ Points int64 }
		s.must(s.gql(alice, `{ getLoyalty { points level remainingPoints } }`, nil), "getLoyalty", &l)
		return l.Points == 10000
	})
	// The saga's history, for Admin.
	var x struct {
		Status  string
		History []struct{ Type, State string }
	}
	s.must(s.gql(admin, `query($id: ID!) { bookingExecution(bookingId: $id) { status history { type state at } } }`,
		map[string]any{"id": b.ID}), "bookingExecution", &x)
	var states []string
	for _, h := range x.History {
		if h.Type == string(berth.HistStateSucceeded) {
			states = append(states, h.State)
		}
	}
	want := "Reserve Flight,Reserve Booking,Collect Payment,Confirm Booking,Notify Booking Confirmed"
	if x.Status != "SUCCEEDED" || strings.Join(states, ",") != want {
		t.Fatalf("execution %s, states %v", x.Status, states)
	}
	// A customer may not read the execution.
	if r := s.gql(alice, `query($id: ID!) { bookingExecution(bookingId: $id) { status } }`, map[string]any{"id": b.ID}); r.code() != "FORBIDDEN" {
		t.Fatalf("customer bookingExecution: %+v", r.Errors)
	}
}

func TestSoldOut(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	f := s.flights(s.token("alice"))[1813] // 2 seats
	var wg sync.WaitGroup
	ids := make([]string, 6)
	tokens := make([]string, 6)
	for i := range ids {
		tokens[i] = s.token("customer-"+string(rune('a'+i)), "customer")
	}
	for i := range ids {
		wg.Add(1)
		go func() {
			defer wg.Done()
			ch := s.charge(tokens[i], 20000, "tok_visa")
			ids[i] = s.book(tokens[i], f.ID, ch).ID
		}()
	}
	wg.Wait()
	counts := map[string]int{}
	for i, id := range ids {
		counts[s.waitBooking(tokens[i], id).Status]++
	}
	if counts["CONFIRMED"] != 2 || counts["CANCELLED"] != 4 {
		t.Fatalf("statuses %v, want 2 CONFIRMED and 4 CANCELLED", counts)
	}
	if got := s.flight(tokens[0], f.ID).SeatCapacity; got != 0 {
		t.Fatalf("seatCapacity = %d, want 0", got)
	}
	// Every authorization of a cancelled booking was voided.
	db := openData(t, s.data)
	_ = db.View(context.Background(), func(tx berth.Tx) error {
		for i, id := range ids {
			b, err := tx.GetBooking(id)
			if err != nil {
				t.Fatal(err)
			}
			c, err := tx.GetCharge(b.PaymentToken)
			if err != nil {
				t.Fatal(err)
			}
			want := berth.ChargeCaptured
			if b.Status == berth.BookingCancelled {
				want = berth.ChargeVoided
			}
			if c.Status != want {
				t.Errorf("booking %d %s: charge %s, want %s", i, b.Status, c.Status, want)
			}
		}
		return nil
	})
}

func TestPaymentFailures(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), "--step-backoff", "20ms")
	alice := s.token("alice")
	f := s.flights(alice)[1830]

	t.Run("declined card", func(t *testing.T) {
		r := s.gql(alice, `mutation { createCharge(amount: 10000, currency: "EUR", token: "tok_chargeDeclined") { id } }`, nil)
		if r.code() != "PAYMENT_DECLINED" {
			t.Fatalf("createCharge with a declined card: %+v", r.Errors)
		}
	})

	t.Run("capture failure", func(t *testing.T) {
		before := s.flight(alice, f.ID).SeatCapacity
		ch := s.charge(alice, 10000, "tok_capture_fail")
		b := s.waitBooking(alice, s.book(alice, f.ID, ch).ID)
		if b.Status != "CANCELLED" {
			t.Fatalf("booking %s, want CANCELLED", b.Status)
		}
		// The booking is CANCELLED by the compensation before the one that
		// releases the seat, so the seat comes back a moment later.
		eventually(t, "the seat to come back", func() bool {
			return s.flight(alice, f.ID).SeatCapacity == before
		})
		db := openData(t, s.data)
		_ = db.View(context.Background(), func(tx berth.Tx) error {
			c, err := tx.GetCharge(ch)
			if err != nil || c.Status != berth.ChargeVoided || c.Captured != 0 {
				t.Fatalf("charge %+v %v, want VOIDED", c, err)
			}
			return nil
		})
	})

	t.Run("refund failure is dead-lettered and redriven", func(t *testing.T) {
		ch := s.charge(alice, 10000, "tok_refund_fail")
		b := s.waitBooking(alice, s.book(alice, f.ID, ch).ID)
		if b.Status != "CONFIRMED" {
			t.Fatalf("booking %s, want CONFIRMED", b.Status)
		}
		seats := s.flight(alice, f.ID).SeatCapacity
		r := s.gql(alice, `mutation($id: ID!) { cancelBooking(id: $id) { id status } }`, map[string]any{"id": b.ID})
		if r.code() != "UNAVAILABLE" {
			t.Fatalf("cancelBooking with a failing refund: %+v", r.Errors)
		}
		list := cli(t, "dlq", "list", "--data", s.data)
		xid := "cancel:" + b.ID
		if !strings.Contains(list, xid) {
			t.Fatalf("dlq list does not show %s:\n%s", xid, list)
		}
		if show := cli(t, "dlq", "show", xid, "--data", s.data); !strings.Contains(show, "Refund Payment") {
			t.Fatalf("dlq show:\n%s", show)
		}
		cli(t, "payments", "heal", ch, "--data", s.data)
		cli(t, "dlq", "redrive", xid, "--data", s.data)
		eventually(t, "the cancellation to finish", func() bool {
			var got booking
			s.must(s.getBooking(alice, b.ID), "getBooking", &got)
			return got.Status == "CANCELLED"
		})
		if got := s.flight(alice, f.ID).SeatCapacity; got != seats+1 {
			t.Fatalf("seatCapacity %d, want %d", got, seats+1)
		}
		if list := cli(t, "dlq", "list", "--data", s.data); strings.Contains(list, xid) {
			t.Fatalf("still dead after redrive:\n%s", list)
		}
	})
}

func TestIdempotencyAndAuthorization(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	alice, bob, admin := s.token("alice"), s.token("bob"), s.token("admin")
	f := s.flights(alice)[1830]
	ch := s.charge(alice, 10000, "tok_visa")
	q := `mutation($in: CreateBookingInput!) { processBooking(input: $in) { id status } }`
	in := map[string]any{"in": map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": ch, "idempotencyKey": "k-1"}}
	var b1, b2, b3 booking
	s.must(s.gql(alice, q, in), "processBooking", &b1)
	s.must(s.gql(alice, q, in), "processBooking", &b2)
	// The same key in the Idempotency-Key header.
	hin := map[string]any{"in": map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": ch}}
	s.must(s.gql(alice, q, hin, "Idempotency-Key", "k-1"), "processBooking", &b3)
	if b1.ID != b2.ID || b1.ID != b3.ID {
		t.Fatalf("same key, different bookings: %s %s %s", b1.ID, b2.ID, b3.ID)
	}
	// Without the key the used charge is refused.
	if r := s.gql(alice, q, hin); r.code() != "CONFLICT" {
		t.Fatalf("reusing a charge: %+v", r.Errors)
	}
	b := s.waitBooking(alice, b1.ID)
	if b.Status != "CONFIRMED" {
		t.Fatalf("booking %s", b.Status)
	}
	if got := s.flight(alice, f.ID).SeatCapacity; got != 9 {
		t.Fatalf("seatCapacity %d, want 9: one booking, one seat", got)
	}
	db := openData(t, s.data)
	_ = db.View(context.Background(), func(tx berth.Tx) error {
		c, err := tx.GetCharge(ch)
		if err != nil || c.Captured != 10000 {
			t.Fatalf("charge %+v %v", c, err)
		}
		return nil
	})

	// Bob cannot see or cancel alice's booking: it looks missing.
	if r := s.getBooking(bob, b.ID); r.code() != "NOT_FOUND" {
		t.Fatalf("bob getBooking: %+v", r.Errors)
	}
	if r := s.gql(bob, `mutation($id: ID!) { cancelBooking(id: $id) { id } }`, map[string]any{"id": b.ID}); r.code() != "NOT_FOUND" {
		t.Fatalf("bob cancelBooking: %+v", r.Errors)
	}
	var list struct{ Items []booking }
	s.must(s.gql(bob, `{ listBookings { items { id } nextToken } }`, nil), "listBookings", &list)
	if len(list.Items) != 0 {
		t.Fatalf("bob lists %d bookings", len(list.Items))
	}
	// Anonymous callers are refused.
	if r := s.getBooking("", b.ID); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous getBooking: %+v", r.Errors)
	}
	if r := s.gql("", `{ listFlights { items { id } } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("anonymous listFlights: %+v", r.Errors)
	}
	// Admin can read and cancel it; the refund revokes the points.
	var got booking
	s.must(s.getBooking(admin, b.ID), "getBooking", &got)
	if got.ID != b.ID {
		t.Fatalf("admin getBooking: %+v", got)
	}
	s.must(s.gql(admin, `mutation($id: ID!) { cancelBooking(id: $id) { id status } }`, map[string]any{"id": b.ID}), "cancelBooking", &got)
	if got.Status != "CANCELLED" {
		t.Fatalf("admin cancelBooking: %s", got.Status)
	}
	if seats := s.flight(alice, f.ID).SeatCapacity; seats != 10 {
		t.Fatalf("seatCapacity %d after cancellation, want 10", seats)
	}
	eventually(t, "points revoked", func() bool {
		var l struct{ Points int64 }
		s.must(s.gql(alice, `{ getLoyalty { points } }`, nil), "getLoyalty", &l)
		return l.Points == 0
	})
	// A bad token is refused with a code, not a crash.
	if r := s.gql("not-a-token", `{ listFlights { items { id } } }`, nil); r.code() != "UNAUTHENTICATED" || r.Status != 401 {
		t.Fatalf("bad token: %d %+v", r.Status, r.Errors)
	}
}
