package airline_test

import (
	"context"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/payment"
)

// TestWatchBooking: a watcher of a booking hears of every committed step
// of its sagas and of an admin's change, and nothing of other bookings.
func TestWatchBooking(t *testing.T) {
	t.Parallel()
	b := setup(t, func(s *payment.Simulated) payment.Provider { return s })
	ctx := context.Background()
	pending := func(ch <-chan struct{}) bool {
		select {
		case <-ch:
			return true
		default:
			return false
		}
	}

	bk := b.book(t, payment.TokenVisa)
	other := b.book(t, payment.TokenVisa)
	changed, stop := b.svc.WatchBooking(bk.ID)
	defer stop()
	if pending(changed) {
		t.Fatal("a signal before anything committed")
	}
	// The watched booking's saga runs to CONFIRMED: at least one signal,
	// sent after the commit, so that a read then sees the new status.
	if _, err := b.engine.Tick(ctx); err != nil {
		t.Fatal(err)
	}
	if !pending(changed) {
		t.Fatal("no signal after the saga committed")
	}
	if got, _, _ := b.state(t, bk.ID); got.Status != berth.BookingConfirmed {
		t.Fatalf("after the signal the booking is %s", got.Status)
	}

	// Another booking's change does not wake this watcher.
	otherChanged, stopOther := b.svc.WatchBooking(other.ID)
	defer stopOther()
	yes := true
	if _, err := b.svc.UpdateBooking(b.admin, other.ID, airline.AdminBookingPatch{CheckedIn: &yes}); err != nil {
		t.Fatal(err)
	}
	if pending(changed) || !pending(otherChanged) {
		t.Fatal("an admin's update signalled the wrong watcher")
	}

	// After stop, nothing is delivered (and nothing blocks).
	stop()
	if _, err := b.svc.UpdateBooking(b.admin, bk.ID, airline.AdminBookingPatch{CheckedIn: &yes}); err != nil {
		t.Fatal(err)
	}
	if pending(changed) {
		t.Fatal("a signal after stop")
	}
}
