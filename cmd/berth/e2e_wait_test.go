package main

import (
	"net/http"
	"testing"
)

// TestBookAndWait books and learns the outcome with one long-poll request:
// getBooking(waitFor: [CONFIRMED, CANCELLED]) answers once the saga ends.
func TestBookAndWait(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	alice, bob := s.token("alice"), s.token("bob")
	f := s.flights(alice)[1830]
	b := s.book(alice, f.ID, s.charge(alice, f.TicketPrice, "tok_visa"))
	if b.Status != "UNCONFIRMED" {
		t.Fatalf("processBooking returned %+v", b)
	}

	const wait = `query($id: ID!, $t: Int) { getBooking(id: $id, waitFor: [CONFIRMED, CANCELLED], timeoutMs: $t) { ` + bookingFields + ` } }`
	// Someone else learns nothing, and does not wait.
	r := s.gql(bob, wait, map[string]any{"id": b.ID, "t": 25000})
	if r.Status != http.StatusOK || r.code() != "NOT_FOUND" || string(r.Data["getBooking"]) != "null" {
		t.Fatalf("bob's getBooking(waitFor): %d %+v %s", r.Status, r.Errors, r.Data["getBooking"])
	}
	if r := s.gql(alice, wait, map[string]any{"id": b.ID, "t": -1}); r.code() != "INVALID" {
		t.Fatalf("getBooking(timeoutMs: -1): %+v", r.Errors)
	}

	// One request: the saga ends well within the 25s of the wait.
	var got booking
	s.must(s.gql(alice, wait, map[string]any{"id": b.ID, "t": 25000}), "getBooking", &got)
	if got.ID != b.ID || got.Status != "CONFIRMED" || got.BookingReference == nil || len(*got.BookingReference) != 6 {
		t.Fatalf("getBooking(waitFor: [CONFIRMED, CANCELLED]) = %+v", got)
	}
	if got := s.flight(alice, f.ID).SeatCapacity; got != f.SeatCapacity-1 {
		t.Fatalf("seatCapacity = %d, want %d", got, f.SeatCapacity-1)
	}
}
