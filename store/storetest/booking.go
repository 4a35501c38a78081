package storetest

import (
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// newBooking returns an unconfirmed booking of one seat of f, paid by a
// charge of its own.
func newBooking(f *berth.Flight, customer string) *berth.Booking {
	return &berth.Booking{
		ResourceID: f.ID, Customer: customer, Quantity: 1, Status: berth.BookingUnconfirmed,
		PaymentToken: "ch_" + berth.NewID(), Price: f.Price, Currency: f.Currency,
	}
}

func getBooking(t *testing.T, b *bundle, id string) *berth.Booking {
	t.Helper()
	return view(t, b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBooking(id) })
}

func testBookings(t *testing.T, b *bundle) {
	f := createFlight(t, b, 10)
	bk := newBooking(f, "cust-1")
	bk.Quantity, bk.Price, bk.IdempotencyKey, bk.ExecutionID = 2, 2*f.Price, "idem-1", berth.NewID()
	b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(bk) })
	if !berth.IsID(bk.ID) || bk.Version != 1 || !bk.CreatedAt.Equal(Start) || !bk.UpdatedAt.Equal(Start) {
		t.Fatalf("CreateBooking: id %q version %d created %v updated %v", bk.ID, bk.Version, bk.CreatedAt, bk.UpdatedAt)
	}
	assertEqual(t, getBooking(t, b, bk.ID), bk)

	t.Run("ByIdempotencyKey", func(t *testing.T) {
		assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByIdempotencyKey("cust-1", "idem-1") }), bk)
		// The key is the customer's own: another customer's lookup misses.
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByIdempotencyKey("cust-2", "idem-1") }), berth.ENOTFOUND, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByIdempotencyKey("cust-1", "idem-2") }), berth.ENOTFOUND, "")
	})
	t.Run("ByPaymentToken", func(t *testing.T) {
		assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByPaymentToken(bk.PaymentToken) }), bk)
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByPaymentToken("ch_unknown") }), berth.ENOTFOUND, "")
	})
	t.Run("DuplicateIdempotencyKey", func(t *testing.T) {
		dup := newBooking(f, "cust-1")
		dup.IdempotencyKey = "idem-1"
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateBooking(dup) }), berth.ECONFLICT, "")
		// Another customer may use the same key.
		other := newBooking(f, "cust-2")
		other.IdempotencyKey = "idem-1"
		b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(other) })
		assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBookingByIdempotencyKey("cust-2", "idem-1") }), other)
	})
	t.Run("NoIdempotencyKey", func(t *testing.T) {
		// Bookings without a key do not collide with each other.
		for range 2 {
			nk := newBooking(f, "cust-1")
			b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(nk) })
		}
	})
	t.Run("DuplicatePaymentToken", func(t *testing.T) {
		dup := newBooking(f, "cust-3")
		dup.PaymentToken = bk.PaymentToken
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateBooking(dup) }), berth.ECONFLICT, "")
	})
	t.Run("DuplicateID", func(t *testing.T) {
		dup := newBooking(f, "cust-3")
		dup.ID = bk.ID
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateBooking(dup) }), berth.ECONFLICT, "")
	})
	t.Run("UnknownResource", func(t *testing.T) {
		// The stores enforce references: a booking of nothing is refused.
		orphan := newBooking(f, "cust-3")
		orphan.ResourceID = berth.NewID()
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateBooking(orphan) }), berth.ECONFLICT, "")
	})
	t.Run("Update", func(t *testing.T) {
		stale := getBooking(t, b, bk.ID)
		cur := getBooking(t, b, bk.ID)
		now := b.clock.Advance(time.Minute)
		cur.Status, cur.Reference, cur.CheckedIn, cur.ExecutionID = berth.BookingConfirmed, berth.NewReference(), true, "x-2"
		b.update(t, func(tx berth.Tx) error { return tx.UpdateBooking(cur) })
		if cur.Version != 2 || !cur.UpdatedAt.Equal(now) {
			t.Fatalf("after UpdateBooking: version %d updated %v, want 2, %v", cur.Version, cur.UpdatedAt, now)
		}
		assertEqual(t, getBooking(t, b, bk.ID), cur)

		// An update based on what was read before loses.
		stale.Status = berth.BookingCancelled
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateBooking(stale) }), berth.ECONFLICT, "")
		if stale.Version != 1 {
			t.Errorf("a failed update bumped the version to %d", stale.Version)
		}
		assertEqual(t, getBooking(t, b, bk.ID), cur)

		// The fields that are not mutable stay as they were.
		changed := *cur
		changed.Customer, changed.Quantity, changed.Price, changed.PaymentToken = "thief", 9, 1, "ch_other"
		b.update(t, func(tx berth.Tx) error { return tx.UpdateBooking(&changed) })
		got := getBooking(t, b, bk.ID)
		if got.Customer != "cust-1" || got.Quantity != 2 || got.Price != 2*f.Price || got.PaymentToken != bk.PaymentToken || got.Version != 3 {
			t.Errorf("UpdateBooking changed immutable fields: %+v", got)
		}

		missing := newBooking(f, "cust-1")
		missing.ID, missing.Version = berth.NewID(), 1
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateBooking(missing) }), berth.ENOTFOUND, "")
	})
	t.Run("DuplicateReference", func(t *testing.T) {
		ref := getBooking(t, b, bk.ID).Reference
		other := newBooking(f, "cust-4")
		b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(other) })
		other.Status, other.Reference = berth.BookingConfirmed, ref
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateBooking(other) }), berth.ECONFLICT, "")
	})
	t.Run("Delete", func(t *testing.T) {
		gone := newBooking(f, "cust-5")
		b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(gone) })
		b.update(t, func(tx berth.Tx) error { return tx.DeleteBooking(gone.ID) })
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Booking, error) { return tx.GetBooking(gone.ID) }), berth.ENOTFOUND, "")
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.DeleteBooking(gone.ID) }), berth.ENOTFOUND, "")
	})
}

func testListBookings(t *testing.T, b *bundle) {
	f := createFlight(t, b, 100)
	statuses := []berth.BookingStatus{
		berth.BookingUnconfirmed, berth.BookingConfirmed, berth.BookingCancelled, berth.BookingUnconfirmed,
		berth.BookingConfirmed, berth.BookingExpired, berth.BookingUnconfirmed, berth.BookingCancelled,
	}
	var all []*berth.Booking
	for i, st := range statuses {
		for _, customer := range []string{"alice", "bob"} {
			if customer == "bob" && i%3 != 0 {
				continue
			}
			bk := newBooking(f, customer)
			bk.Status = st
			b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(bk) })
			all = append(all, bk)
		}
	}
	ids := func(bs []*berth.Booking) []string {
		out := make([]string, len(bs))
		for i, bk := range bs {
			out[i] = bk.ID
		}
		return out
	}
	want := func(q berth.BookingQuery, desc bool) []string {
		var bs []*berth.Booking
		for _, bk := range all {
			if q.Customer != "" && (bk.Customer != q.Customer ||
				q.StatusFrom != "" && string(bk.Status) < q.StatusFrom || q.StatusTo != "" && string(bk.Status) > q.StatusTo) {
				continue
			}
			bs = append(bs, bk)
		}
		slices.SortFunc(bs, func(a, b *berth.Booking) int {
			c := 0
			if q.Customer != "" {
				c = strings.Compare(string(a.Status), string(b.Status))
			}
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			if desc {
				c = -c
			}
			return c
		})
		return ids(bs)
	}
	for _, tt := range []struct {
		name string
		q    berth.BookingQuery
	}{
		{"All", berth.BookingQuery{}},
		{"Customer", berth.BookingQuery{Customer: "alice"}},
		{"OtherCustomer", berth.BookingQuery{Customer: "bob"}},
		{"OneStatus", berth.BookingQuery{Customer: "alice", StatusFrom: "CONFIRMED", StatusTo: "CONFIRMED"}},
		{"StatusRange", berth.BookingQuery{Customer: "alice", StatusFrom: "CONFIRMED", StatusTo: "EXPIRED"}},
		{"FromStatus", berth.BookingQuery{Customer: "alice", StatusFrom: "EXPIRED"}},
		{"ToStatus", berth.BookingQuery{Customer: "alice", StatusTo: "CONFIRMED"}},
		{"NoBookings", berth.BookingQuery{Customer: "carol"}},
	} {
		cursor := func(bk *berth.Booking) berth.Cursor { return berth.Cursor{ID: bk.ID} }
		if tt.q.Customer != "" {
			cursor = func(bk *berth.Booking) berth.Cursor { return berth.Cursor{Key: string(bk.Status), ID: bk.ID} }
		}
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{1, 3, 100} {
				t.Run(fmt.Sprintf("%s/desc=%v/limit=%d", tt.name, desc, limit), func(t *testing.T) {
					got := paginate(t, b, limit, desc, func(tx berth.Tx, p berth.Page) ([]*berth.Booking, error) {
						q := tt.q
						q.Page = p
						return tx.ListBookings(q)
					}, cursor)
					if w := want(tt.q, desc); !slices.Equal(ids(got), w) {
						t.Fatalf("got %v\nwant %v", ids(got), w)
					}
				})
			}
		}
	}
}

func testTickets(t *testing.T, b *bundle) {
	f := createFlight(t, b, 10)
	bk := newBooking(f, "cust")
	bk.Quantity = 2
	b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(bk) })
	var tickets []*berth.Ticket
	b.update(t, func(tx berth.Tx) error {
		tickets = nil
		for _, code := range []string{"T-1", "T-2"} {
			k := &berth.Ticket{BookingID: bk.ID, ResourceID: f.ID, Code: code, Status: berth.TicketBooked}
			if err := tx.CreateTicket(k); err != nil {
				return err
			}
			tickets = append(tickets, k)
		}
		return nil
	})
	slices.SortFunc(tickets, func(a, b *berth.Ticket) int { return strings.Compare(a.ID, b.ID) })
	list := func() []*berth.Ticket {
		return view(t, b, func(tx berth.Tx) ([]*berth.Ticket, error) { return tx.ListTickets(bk.ID) })
	}
	assertEqual(t, list(), tickets)

	now := b.clock.Advance(time.Minute)
	tickets[0].Status, tickets[0].CheckedIn = berth.TicketCanceled, true
	b.update(t, func(tx berth.Tx) error { return tx.UpdateTicket(tickets[0]) })
	if !tickets[0].UpdatedAt.Equal(now) {
		t.Errorf("UpdatedAt = %v, want %v", tickets[0].UpdatedAt, now)
	}
	assertEqual(t, list(), tickets)

	missing := &berth.Ticket{ID: berth.NewID(), Status: berth.TicketBooked}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateTicket(missing) }), berth.ENOTFOUND, "")
	dup := &berth.Ticket{BookingID: bk.ID, ResourceID: f.ID, Code: "T-1", Status: berth.TicketBooked}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateTicket(dup) }), berth.ECONFLICT, "")
	if got := view(t, b, func(tx berth.Tx) ([]*berth.Ticket, error) { return tx.ListTickets(berth.NewID()) }); len(got) != 0 {
		t.Errorf("tickets of an unknown booking: %v", got)
	}

	// Deleting the booking deletes its tickets.
	b.update(t, func(tx berth.Tx) error { return tx.DeleteBooking(bk.ID) })
	if got := list(); len(got) != 0 {
		t.Errorf("tickets left after DeleteBooking: %d", len(got))
	}
}

func testCharges(t *testing.T, b *bundle) {
	c := &berth.Charge{Customer: "cust", Amount: 5000, Currency: "EUR", Status: berth.ChargeAuthorized, ProviderRef: "auth_1"}
	b.update(t, func(tx berth.Tx) error { return tx.CreateCharge(c) })
	if !strings.HasPrefix(c.ID, "ch_") || c.Version != 1 || !c.CreatedAt.Equal(Start) {
		t.Fatalf("CreateCharge: id %q version %d created %v", c.ID, c.Version, c.CreatedAt)
	}
	get := func() *berth.Charge {
		return view(t, b, func(tx berth.Tx) (*berth.Charge, error) { return tx.GetCharge(c.ID) })
	}
	assertEqual(t, get(), c)

	stale := get()
	now := b.clock.Advance(time.Minute)
	c.Status, c.Captured, c.BookingID = berth.ChargeCaptured, 5000, "booking-1"
	b.update(t, func(tx berth.Tx) error { return tx.UpdateCharge(c) })
	if c.Version != 2 || !c.UpdatedAt.Equal(now) {
		t.Fatalf("after UpdateCharge: version %d updated %v", c.Version, c.UpdatedAt)
	}
	assertEqual(t, get(), c)

	stale.Status = berth.ChargeVoided
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateCharge(stale) }), berth.ECONFLICT, "")
	assertEqual(t, get(), c)

	// The data's own rules hold in both databases: no refund above the capture.
	over := get()
	over.Refunded = over.Captured + 1
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateCharge(over) }), berth.ECONFLICT, "")

	missing := &berth.Charge{ID: "ch_missing", Version: 1, Status: berth.ChargeVoided}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateCharge(missing) }), berth.ENOTFOUND, "")
	wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Charge, error) { return tx.GetCharge("ch_missing") }), berth.ENOTFOUND, "")
	dup := &berth.Charge{ID: c.ID, Customer: "cust", Amount: 1, Currency: "EUR", Status: berth.ChargeAuthorized}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateCharge(dup) }), berth.ECONFLICT, "")
}
