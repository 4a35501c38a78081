package graphql

import (
	"context"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

func TestBookingFlow(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))

	// processBooking ignores the customer, status and id of the input.
	ch := s.charge(asAlice, 10000, "tok_visa")
	r := s.gql(asAlice, processBooking, map[string]any{"in": map[string]any{
		"id": "0190f3c4-0000-7000-8000-000000000001", "status": "CONFIRMED", "customer": "mallory", "createdAt": "1999-01-01",
		"bookingOutboundFlightId": f.ID, "paymentToken": ch}})
	b := must[booking](s, r, "processBooking")
	if b.Status != "UNCONFIRMED" || b.ID == "" || b.ID == "0190f3c4-0000-7000-8000-000000000001" || *b.Customer != "alice" ||
		b.PaymentToken != ch || b.BookingReference != nil || b.OutboundFlight == nil || b.OutboundFlight.ID != f.ID {
		t.Fatalf("processBooking: %s", r.raw)
	}
	if _, err := time.Parse(timeLayout, *b.CreatedAt); err != nil || !strings.HasSuffix(*b.CreatedAt, "Z") {
		t.Fatalf("createdAt %q", *b.CreatedAt)
	}

	// The saga confirms it.
	b = s.waitBooking(asAlice, b.ID)
	if b.Status != "CONFIRMED" || b.BookingReference == nil || len(*b.BookingReference) != 6 {
		t.Fatalf("confirmed booking: %+v", b)
	}
	if b.OutboundFlight.SeatCapacity != 9 {
		t.Fatalf("seats after the booking: %d", b.OutboundFlight.SeatCapacity)
	}

	// Another customer cannot tell it exists.
	r = s.gql(asBob, `query($id: ID!) { getBooking(id: $id) { id } }`, map[string]any{"id": b.ID})
	if s.wantError(r, http.StatusOK, "NOT_FOUND"); string(r.Data["getBooking"]) != "null" {
		t.Fatalf("bob's getBooking: %s", r.raw)
	}
	s.wantError(s.gql(asAnonymous, `query($id: ID!) { getBooking(id: $id) { id } }`, map[string]any{"id": b.ID}), http.StatusOK, "UNAUTHENTICATED")
	must[booking](s, s.gql(asAdmin, `query($id: ID!) { getBooking(id: $id) { id } }`, map[string]any{"id": b.ID}), "getBooking")

	// Lists: the owner's own; by status through the customer index.
	mine := must[page[booking]](s, s.gql(asAlice, `{ listBookings { items { `+bookingFields+` } nextToken } }`, nil), "listBookings")
	theirs := must[page[booking]](s, s.gql(asBob, `{ listBookings { items { id } nextToken } }`, nil), "listBookings")
	if len(mine.Items) != 1 || mine.Items[0].ID != b.ID || len(theirs.Items) != 0 {
		t.Fatalf("listBookings: alice %+v, bob %+v", mine, theirs)
	}
	byStatus := func(actor, customer string, status map[string]any, filter map[string]any) int {
		t.Helper()
		r := s.gql(actor, `query($c: String, $s: ModelStringKeyConditionInput, $f: ModelBookingFilterInput) {
			getBookingByStatus(customer: $c, status: $s, filter: $f, sortDirection: DESC) { items { id status } nextToken } }`,
			map[string]any{"c": customer, "s": status, "f": filter})
		return len(must[page[booking]](s, r, "getBookingByStatus").Items)
	}
	for _, c := range []struct {
		actor, customer string
		status, filter  map[string]any
		want            int
	}{
		{asAlice, "", map[string]any{"eq": "CONFIRMED"}, nil, 1},
		{asAlice, "alice", map[string]any{"beginsWith": "CONF"}, nil, 1},
		{asAlice, "", map[string]any{"eq": "CANCELLED"}, nil, 0},
		{asAlice, "", nil, map[string]any{"bookingReference": map[string]any{"eq": *b.BookingReference}}, 1},
		{asAlice, "", nil, map[string]any{"checkedIn": map[string]any{"eq": true}}, 0},
		{asAlice, "", nil, map[string]any{"status": map[string]any{"ne": "CONFIRMED"}}, 0},
		{asAlice, "", nil, map[string]any{"createdAt": map[string]any{"beginsWith": (*b.CreatedAt)[:7]}}, 1},
		{asBob, "alice", nil, nil, 0},   // someone else's: an empty page
		{asAdmin, "alice", nil, nil, 1}, // Admin may name anyone
	} {
		if got := byStatus(c.actor, c.customer, c.status, c.filter); got != c.want {
			t.Errorf("getBookingByStatus(%s as %s, %v, %v) = %d items, want %d", c.customer, c.actor, c.status, c.filter, got, c.want)
		}
	}

	// Loyalty: one point per minor unit paid, once the booking is confirmed.
	var l struct {
		Points, RemainingPoints int
		Level                   string
	}
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		l = must[struct {
			Points, RemainingPoints int
			Level                   string
		}](s, s.gql(asAlice, `{ getLoyalty { points level remainingPoints } }`, nil), "getLoyalty")
		if l.Points > 0 || time.Now().After(deadline) {
			break
		}
	}
	if l.Points != 10000 || l.Level != "bronze" || l.RemainingPoints != 40000 {
		t.Fatalf("getLoyalty: %+v", l)
	}
	s.wantError(s.gql(asBob, `{ getLoyalty(customer: "alice") { points } }`, nil), http.StatusOK, "FORBIDDEN")
	must[struct{ Points int }](s, s.gql(asAdmin, `{ getLoyalty(customer: "alice") { points } }`, nil), "getLoyalty")

	// The execution with its history, for Admin.
	q := `query($id: ID!) { bookingExecution(bookingId: $id) { id definition status phase step attempt correlation input state createdAt updatedAt
		history { seq type state attempt detail error at } } }`
	x := must[struct {
		ID, Definition, Status, Correlation string
		Input, State                        *string
		History                             []struct {
			Seq      int
			Type, At string
			State    *string
		}
	}](s, s.gql(asAdmin, q, map[string]any{"id": b.ID}), "bookingExecution")
	if x.Definition != "processBooking" || x.Status != "SUCCEEDED" || x.Correlation != b.ID || x.Input == nil || !strings.Contains(*x.Input, f.ID) {
		t.Fatalf("bookingExecution: %+v", x)
	}
	var states []string
	for _, h := range x.History {
		if h.Type == "StateSucceeded" {
			states = append(states, *h.State)
		}
	}
	if strings.Join(states, ",") != "Reserve Flight,Reserve Booking,Collect Payment,Confirm Booking,Notify Booking Confirmed" {
		t.Fatalf("history: %v", states)
	}
	s.wantError(s.gql(asAlice, q, map[string]any{"id": b.ID}), http.StatusOK, "FORBIDDEN")
	s.wantError(s.gql(asAdmin, `query($id: ID!) { bookingExecution(bookingId: $id, saga: "other") { id } }`, map[string]any{"id": b.ID}), http.StatusOK, "INVALID")
	// The same execution by id; its history is read on demand.
	byID := must[struct{ History []struct{ Seq int } }](s, s.gql(asAdmin, `query($id: ID!) { execution(id: $id) { history { seq } } }`,
		map[string]any{"id": x.ID}), "execution")
	if len(byID.History) != len(x.History) {
		t.Fatalf("execution(id).history has %d entries, bookingExecution's %d", len(byID.History), len(x.History))
	}

	// cancelBooking: refund, release the seat.
	s.wantError(s.gql(asBob, `mutation($id: ID!) { cancelBooking(id: $id) { id } }`, map[string]any{"id": b.ID}), http.StatusOK, "NOT_FOUND")
	c := must[booking](s, s.gql(asAlice, `mutation($id: ID!) { cancelBooking(id: $id) { `+bookingFields+` } }`, map[string]any{"id": b.ID}), "cancelBooking")
	if c.Status != "CANCELLED" || c.OutboundFlight.SeatCapacity != 10 {
		t.Fatalf("cancelBooking: %+v", c)
	}
	s.noInternalErrors()
}

func TestProcessBookingIdempotency(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	in := func(charge string, kv ...string) map[string]any {
		// The original client's input: no status.
		m := map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": charge}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i]] = kv[i+1]
		}
		return map[string]any{"in": m}
	}

	// The input field.
	ch := s.charge(asAlice, 10000, "tok_visa")
	b1 := must[booking](s, s.gql(asAlice, processBooking, in(ch, "idempotencyKey", "k-1")), "processBooking")
	again := must[booking](s, s.gql(asAlice, processBooking, in(ch, "idempotencyKey", "k-1")), "processBooking")
	if again.ID != b1.ID {
		t.Fatalf("same input key, different bookings: %s, %s", b1.ID, again.ID)
	}

	// The Idempotency-Key header.
	ch2 := s.charge(asAlice, 10000, "tok_visa")
	b2 := s.book(asAlice, f.ID, ch2, "Idempotency-Key", "h-1")
	again = s.book(asAlice, f.ID, ch2, "Idempotency-Key", "h-1")
	if again.ID != b2.ID || b2.ID == b1.ID {
		t.Fatalf("same header key: %s, %s (first booking %s)", b2.ID, again.ID, b1.ID)
	}

	// The input field wins over the header.
	again = must[booking](s, s.gql(asAlice, processBooking, in(ch, "idempotencyKey", "k-1"), "Idempotency-Key", "h-1"), "processBooking")
	if again.ID != b1.ID {
		t.Fatalf("input key and header: got %s, want %s", again.ID, b1.ID)
	}

	// A key reused for another request, and a payment token used twice.
	s.wantError(s.gql(asAlice, processBooking, in(ch2, "idempotencyKey", "k-1")), http.StatusOK, "CONFLICT")
	s.wantError(s.gql(asAlice, processBooking, in(ch)), http.StatusOK, "CONFLICT")
	// Someone else's charge, a declined card.
	s.wantError(s.gql(asBob, processBooking, in(s.charge(asAlice, 10000, "tok_visa"))), http.StatusOK, "INVALID")
	s.wantError(s.gql(asAlice, `mutation { createCharge(amount: 10000, currency: "EUR", token: "tok_chargeDeclined") { id } }`, nil),
		http.StatusOK, "PAYMENT_DECLINED")
	s.wantError(s.gql(asAnonymous, `mutation { createCharge(amount: 10000, currency: "EUR", token: "tok_visa") { id } }`, nil),
		http.StatusOK, "UNAUTHENTICATED")
	s.wantError(s.gql(asAnonymous, processBooking, in(ch)), http.StatusOK, "UNAUTHENTICATED")

	s.waitBooking(asAlice, b1.ID)
	s.waitBooking(asAlice, b2.ID)
	s.noInternalErrors()
}

func TestOutboundFlightIsBatched(t *testing.T) {
	t.Parallel()
	s := setup(t)
	var flights []string
	for i := 1; i <= 3; i++ {
		flights = append(flights, s.createFlight(flightInput(i, "2026-12-01T08:00:00Z", "LGW", "MAD", 10)).ID)
	}
	create := `mutation($in: CreateBookingInput!) { createBooking(input: $in) { ` + bookingFields + ` } }`
	for i := range 9 {
		in := map[string]any{"bookingOutboundFlightId": flights[i%3], "paymentToken": "ignored", "status": "CONFIRMED", "customer": "alice"}
		b := must[booking](s, s.gql(asAdmin, create, map[string]any{"in": in}), "createBooking")
		if b.BookingReference == nil || b.OutboundFlight.ID != flights[i%3] {
			t.Fatalf("createBooking: %+v", b)
		}
	}
	before := s.store.getFlights.Load()
	p := must[page[booking]](s, s.gql(asAlice, `{ listBookings { items { id outboundFlight { id flightNumber } } } }`, nil), "listBookings")
	if len(p.Items) != 9 {
		t.Fatalf("listBookings: %d items", len(p.Items))
	}
	for _, b := range p.Items {
		if b.OutboundFlight == nil || b.OutboundFlight.ID == "" {
			t.Fatalf("booking %s without its flight", b.ID)
		}
	}
	if n := s.store.getFlights.Load() - before; n != 1 {
		t.Fatalf("9 bookings read their flights in %d GetFlights calls, want 1", n)
	}
	s.noInternalErrors()
}

func TestAdminBookings(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	create := `mutation($in: CreateBookingInput!) { createBooking(input: $in) { ` + bookingFields + ` } }`
	in := map[string]any{"in": map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": "x", "status": "UNCONFIRMED",
		"customer": "alice", "checkedIn": false}}
	s.wantError(s.gql(asAlice, create, in), http.StatusOK, "FORBIDDEN")
	s.wantError(s.gql(asAdmin, create, map[string]any{"in": map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": "x",
		"customer": "alice"}}), http.StatusOK, "INVALID") // createBooking needs a status
	b := must[booking](s, s.gql(asAdmin, create, in), "createBooking")
	if b.Status != "UNCONFIRMED" || *b.Customer != "alice" || b.OutboundFlight.SeatCapacity != 9 {
		t.Fatalf("createBooking: %+v", b)
	}
	update := `mutation($in: UpdateBookingInput!) { updateBooking(input: $in) { ` + bookingFields + ` } }`
	s.wantError(s.gql(asAlice, update, map[string]any{"in": map[string]any{"id": b.ID, "checkedIn": true}}), http.StatusOK, "FORBIDDEN")
	u := must[booking](s, s.gql(asAdmin, update, map[string]any{"in": map[string]any{"id": b.ID, "status": "CONFIRMED", "checkedIn": true}}), "updateBooking")
	if u.Status != "CONFIRMED" || !*u.CheckedIn || u.BookingReference == nil {
		t.Fatalf("updateBooking: %+v", u)
	}
	del := `mutation($id: ID!) { deleteBooking(input: {id: $id}) { id status } }`
	s.wantError(s.gql(asBob, del, map[string]any{"id": b.ID}), http.StatusOK, "FORBIDDEN")
	d := must[booking](s, s.gql(asAdmin, del, map[string]any{"id": b.ID}), "deleteBooking")
	if d.ID != b.ID {
		t.Fatalf("deleteBooking: %+v", d)
	}
	if got := must[flight](s, s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { seatCapacity } }`, map[string]any{"id": f.ID}), "getFlight"); got.SeatCapacity != 10 {
		t.Fatalf("seats after deleteBooking: %d", got.SeatCapacity)
	}
	s.noInternalErrors()
}

// TestDeadLetterRedrive: a refund that keeps failing sends the cancellation
// to the dead-letter queue; an operator heals the payment and redrives it.
func TestDeadLetterRedrive(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	ch := s.charge(asAlice, 10000, "tok_refund_fail")
	b := s.waitBooking(asAlice, s.book(asAlice, f.ID, ch).ID)
	if b.Status != "CONFIRMED" {
		t.Fatalf("booking: %+v", b)
	}
	s.wantError(s.gql(asAlice, `mutation($id: ID!) { cancelBooking(id: $id) { id } }`, map[string]any{"id": b.ID}), http.StatusOK, "UNAVAILABLE")

	dead := `query($t: String) { deadLetters(limit: 1, nextToken: $t) { items { id definition status error history { type } } nextToken } }`
	s.wantError(s.gql(asAlice, dead, nil), http.StatusOK, "FORBIDDEN")
	p := must[page[struct {
		ID, Definition, Status string
		Error                  *string
		History                []struct{ Type string }
	}]](s, s.gql(asAdmin, dead, nil), "deadLetters")
	if len(p.Items) != 1 || p.Items[0].Status != "DEAD" || p.Items[0].Definition != "cancelBooking" || p.Items[0].Error == nil ||
		p.Items[0].History[len(p.Items[0].History)-1].Type != "ExecutionDeadLettered" {
		t.Fatalf("deadLetters: %+v", p)
	}
	if p.NextToken != nil {
		if next := must[page[struct{ ID string }]](s, s.gql(asAdmin, dead, map[string]any{"t": *p.NextToken}), "deadLetters"); len(next.Items) != 0 {
			t.Fatalf("second page: %+v", next)
		}
	}
	s.wantError(s.gql(asAdmin, dead, map[string]any{"t": "not a token"}), http.StatusOK, "INVALID")

	// Heal the simulated refund failure and redrive.
	var ref string
	if err := s.db.View(context.Background(), func(tx berth.Tx) error {
		c, err := tx.GetCharge(ch)
		if err == nil {
			ref = c.ProviderRef
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := payment.Heal(context.Background(), s.db, ref); err != nil {
		t.Fatal(err)
	}
	redrive := `mutation($id: ID!) { redriveExecution(id: $id) { id status } }`
	s.wantError(s.gql(asAlice, redrive, map[string]any{"id": p.Items[0].ID}), http.StatusOK, "FORBIDDEN")
	x := must[struct{ ID, Status string }](s, s.gql(asAdmin, redrive, map[string]any{"id": p.Items[0].ID}), "redriveExecution")
	if x.Status != "RUNNING" {
		t.Fatalf("redriveExecution: %+v", x)
	}
	s.wantError(s.gql(asAdmin, redrive, map[string]any{"id": "0190f3c4-0000-7000-8000-000000000000"}), http.StatusOK, "NOT_FOUND")
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(20 * time.Millisecond) {
		cx := must[struct{ Status string }](s, s.gql(asAdmin, `query($id: ID!) { bookingExecution(bookingId: $id, saga: "cancelBooking") { status } }`,
			map[string]any{"id": b.ID}), "bookingExecution")
		if cx.Status == "SUCCEEDED" {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the redriven cancellation is %s", cx.Status)
		}
	}
	if got := s.waitBooking(asAlice, b.ID); got.Status != "CANCELLED" || got.OutboundFlight.SeatCapacity != 10 {
		t.Fatalf("booking after the redrive: %+v", got)
	}
	s.noInternalErrors()
}
