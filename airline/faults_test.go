package airline_test

import (
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
)

const price = 10000

// outcome is what a booking's saga ends as, as seen by the test: the
// columns of the fault table in docs/RELIABILITY.md.
type outcome struct {
	Exec     berth.ExecutionStatus // the saga under test (processBooking, or cancelBooking)
	Err      string                // the error code that sent it compensating or dead
	Booking  berth.BookingStatus
	Seats    int                // change in the flight's available seats
	Charge   berth.ChargeStatus // berth's record
	Captured int64              // berth's record and the provider's ledger (they must agree)
	Refunded int64
	Points   int64 // the customer's loyalty points
	Dead     int   // executions in the dead-letter queue
}

func (o outcome) err(code string) outcome { o.Err = code; return o }

var (
	succeeded = outcome{Exec: berth.ExecutionSucceeded, Booking: berth.BookingConfirmed, Seats: -1, Charge: berth.ChargeCaptured,
		Captured: price, Points: price}
	failedVoided   = outcome{Exec: berth.ExecutionFailed, Booking: berth.BookingCancelled, Charge: berth.ChargeVoided}
	failedRefunded = outcome{Exec: berth.ExecutionFailed, Booking: berth.BookingCancelled, Charge: berth.ChargeRefunded,
		Captured: price, Refunded: price}
	cancelled = outcome{Exec: berth.ExecutionSucceeded, Booking: berth.BookingCancelled, Charge: berth.ChargeRefunded,
		Captured: price, Refunded: price}
)

// dead is an outcome with the saga under test in the dead-letter queue.
func dead(code string, b berth.BookingStatus, seats int, ch berth.ChargeStatus, captured, refunded, points int64) outcome {
	return outcome{Exec: berth.ExecutionDead, Err: code, Booking: b, Seats: seats, Charge: ch, Captured: captured, Refunded: refunded,
		Points: points, Dead: 1}
}

// faultCase is one row of the fault table.
type faultCase struct {
	saga  string // airline.ProcessBooking or airline.CancelBooking
	step  string // the state the fault hits
	fault string
	card  string // default tok_visa
	// soldOut: another customer takes the flight's only seat first.
	soldOut bool
	// retry overrides the default step retry policy (6 attempts, 200 ms
	// doubling to 30 s).
	retry saga.RetryPolicy
	// outage: the provider is down (every operation) this long from the
	// booking on, then back.
	outage time.Duration
	inject func(r *rig)
	want   outcome
	// after is the outcome once the cause is fixed and the dead-letter
	// queue redriven (only when something is dead).
	after *outcome
	slow  bool // waits out a real 10 s step timeout
}

// outlastHold is a retry budget longer than the 15-minute hold.
var outlastHold = saga.RetryPolicy{MaxAttempts: 40, Initial: time.Second, Max: time.Minute}

func dbErr(name string, match func(faults.Call) bool, times int) func(*rig) {
	return func(r *rig) { r.fs.Inject(faults.TxFault{Name: name, Match: match, Times: times}) }
}

func dbRefuse(name string, match func(faults.Call) bool) func(*rig) {
	return func(r *rig) {
		r.fs.Inject(faults.TxFault{Name: name, Match: match, Err: berth.Errorf(berth.ECONFLICT, "injected business failure at %s", name)})
	}
}

func crash(name string, match func(faults.Call) bool) func(*rig) {
	return func(r *rig) { r.fs.Inject(faults.TxFault{Name: name, Match: match, Times: 1, Crash: true}) }
}

func pay(op faults.Op, kind faults.Kind, times int) func(*rig) {
	return func(r *rig) { r.prov.Inject(faults.Fault{Op: op, Kind: kind, Times: times}) }
}

func all(fs ...func(*rig)) func(*rig) {
	return func(r *rig) {
		for _, f := range fs {
			f(r)
		}
	}
}

func ptr(o outcome) *outcome { return &o }

var (
	onConfirm   = faults.OnBookingStatus(berth.BookingConfirmed)
	onCancel    = faults.OnBookingStatus(berth.BookingCancelled)
	forward     = berth.PhaseForward
	compensated = berth.PhaseCompensating
)

// faultCases: every processBooking and cancelBooking step × business
// failure, transient error then success, persistent failure, timeout (a
// hang past the step timeout for provider calls; the hold time for
// database steps), "done but the reply was lost" at the provider, and a
// crash between a step's effects and its commit.
var faultCases = []faultCase{
	{saga: airline.ProcessBooking, step: "—", fault: "none", want: succeeded},

	{saga: airline.ProcessBooking, step: airline.StateReserveFlight, fault: "flight sold out (business)", soldOut: true, want: failedVoided.err(berth.ESOLDOUT)},
	{saga: airline.ProcessBooking, step: airline.StateReserveFlight, fault: "database error once", inject: dbErr("reserve", faults.OnReserve(), 1), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateReserveFlight, fault: "database error on all 6 attempts", inject: dbErr("reserve", faults.OnReserve(), 0),
		want: failedVoided.err(berth.EUNAVAILABLE)},
	{saga: airline.ProcessBooking, step: airline.StateReserveFlight, fault: "database down past the 15-min hold (40 attempts)", retry: outlastHold,
		inject: dbErr("reserve", faults.OnReserve(), 0), want: failedVoided.err(berth.ETIMEOUT)},
	{saga: airline.ProcessBooking, step: airline.StateReserveFlight, fault: "crash before the step commits", inject: crash("reserve", faults.OnStepCommit(airline.ProcessBooking, forward, 0)),
		want: succeeded},

	{saga: airline.ProcessBooking, step: airline.StateReserveBooking, fault: "ticket refused (business)", inject: dbRefuse("ticket", faults.OnCreateTicket()),
		want: failedVoided.err(berth.ECONFLICT)},
	{saga: airline.ProcessBooking, step: airline.StateReserveBooking, fault: "database error once", inject: dbErr("ticket", faults.OnCreateTicket(), 1), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateReserveBooking, fault: "database down past the hold (40 attempts)", retry: outlastHold,
		inject: dbErr("ticket", faults.OnCreateTicket(), 0), want: failedVoided.err(berth.ETIMEOUT)},

	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "capture declined (`tok_capture_fail`)", card: payment.TokenCaptureFail,
		want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "provider error once", inject: pay(faults.OpCapture, faults.Transient, 1), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "provider error on all 6 attempts", inject: pay(faults.OpCapture, faults.Transient, 0),
		want: failedVoided.err(berth.EUNAVAILABLE)},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "capture hangs once (10 s step timeout)", inject: pay(faults.OpCapture, faults.Hang, 1),
		want: succeeded, slow: true},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "captured, reply lost", inject: pay(faults.OpCapture, faults.ReplyLost, 1), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "captured, then hung past the step timeout", inject: pay(faults.OpCapture, faults.DoneThenHang, 1),
		want: succeeded, slow: true},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "captured, reply lost, then errors on every retry",
		inject: all(pay(faults.OpCapture, faults.ReplyLost, 1), pay(faults.OpCapture, faults.Transient, 0)), want: failedRefunded.err(berth.EUNAVAILABLE)},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "database error after the capture", inject: dbErr("capture", faults.OnChargeStatus(berth.ChargeCaptured), 1),
		want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "crash after the capture, before its commit",
		inject: crash("capture", faults.OnStepCommit(airline.ProcessBooking, forward, 2)), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "provider down 2 s, then back", outage: 2 * time.Second, want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "provider down 1 min (longer than both retry budgets)", outage: time.Minute,
		want:  dead(berth.EUNAVAILABLE, berth.BookingUnconfirmed, -1, berth.ChargeAuthorized, 0, 0, 0),
		after: ptr(failedVoided.err(berth.EUNAVAILABLE))},
	{saga: airline.ProcessBooking, step: airline.StateCollectPayment, fault: "provider down 20 min, retries outlast the hold", outage: 20 * time.Minute, retry: outlastHold,
		want: failedVoided.err(berth.ETIMEOUT)},

	{saga: airline.ProcessBooking, step: airline.StateConfirmBooking, fault: "refused (business)", inject: dbRefuse("confirm", onConfirm), want: failedRefunded.err(berth.ECONFLICT)},
	{saga: airline.ProcessBooking, step: airline.StateConfirmBooking, fault: "database error once", inject: dbErr("confirm", onConfirm, 1), want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateConfirmBooking, fault: "database down past the hold (40 attempts)", retry: outlastHold,
		inject: dbErr("confirm", onConfirm, 0), want: failedRefunded.err(berth.ETIMEOUT)},

	{saga: airline.ProcessBooking, step: airline.StateNotifyBookingConfirmed, fault: "refused (business)", inject: dbRefuse("notify", faults.OnEvent(berth.EventBookingConfirmed)),
		want:  dead(berth.ECONFLICT, berth.BookingConfirmed, -1, berth.ChargeCaptured, price, 0, 0),
		after: ptr(succeeded)},
	{saga: airline.ProcessBooking, step: airline.StateNotifyBookingConfirmed, fault: "database error once", inject: dbErr("notify", faults.OnEvent(berth.EventBookingConfirmed), 1),
		want: succeeded},
	{saga: airline.ProcessBooking, step: airline.StateNotifyBookingConfirmed, fault: "database error on all 40 attempts, past the hold", retry: outlastHold,
		inject: dbErr("notify", faults.OnEvent(berth.EventBookingConfirmed), 0),
		want:   dead(berth.EUNAVAILABLE, berth.BookingConfirmed, -1, berth.ChargeCaptured, price, 0, 0),
		after:  ptr(succeeded)},
	{saga: airline.ProcessBooking, step: "loyalty job (BookingConfirmed)", fault: "database error on every attempt", inject: dbErr("earn", faults.OnLoyalty(berth.LoyaltyEarn), 0),
		want:  outcome{Exec: berth.ExecutionSucceeded, Booking: berth.BookingConfirmed, Seats: -1, Charge: berth.ChargeCaptured, Captured: price, Dead: 1},
		after: ptr(succeeded)},

	// Compensations, after a declined capture (void) or a refused
	// confirmation (refund).
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "void refused (business)", card: payment.TokenCaptureFail,
		inject: pay(faults.OpVoid, faults.Refuse, 0),
		want:   dead(berth.EPAYMENTDECLINED, berth.BookingUnconfirmed, -1, berth.ChargeAuthorized, 0, 0, 0),
		after:  ptr(failedVoided.err(berth.EPAYMENTDECLINED))},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "void: provider error once", card: payment.TokenCaptureFail,
		inject: pay(faults.OpVoid, faults.Transient, 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "void hangs once (10 s step timeout)", card: payment.TokenCaptureFail,
		inject: pay(faults.OpVoid, faults.Hang, 1), want: failedVoided.err(berth.EPAYMENTDECLINED), slow: true},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "voided, reply lost", card: payment.TokenCaptureFail,
		inject: pay(faults.OpVoid, faults.ReplyLost, 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "void: provider error on all 6 attempts", card: payment.TokenCaptureFail,
		inject: pay(faults.OpVoid, faults.Transient, 0),
		want:   dead(berth.EUNAVAILABLE, berth.BookingUnconfirmed, -1, berth.ChargeAuthorized, 0, 0, 0),
		after:  ptr(failedVoided.err(berth.EUNAVAILABLE))},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "refunded, reply lost (after Confirm Booking refused)",
		inject: all(dbRefuse("confirm", onConfirm), pay(faults.OpRefund, faults.ReplyLost, 1)), want: failedRefunded.err(berth.ECONFLICT)},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "refund keeps failing (`tok_refund_fail`, after Confirm Booking refused)",
		card: payment.TokenRefundFail, inject: dbRefuse("confirm", onConfirm),
		want:  dead(berth.EUNAVAILABLE, berth.BookingUnconfirmed, -1, berth.ChargeCaptured, price, 0, 0),
		after: ptr(failedRefunded.err(berth.EUNAVAILABLE))},
	{saga: airline.ProcessBooking, step: airline.StateRefundPayment, fault: "database error after the void", card: payment.TokenCaptureFail,
		inject: dbErr("void", faults.OnChargeStatus(berth.ChargeVoided), 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},

	{saga: airline.ProcessBooking, step: airline.StateCancelBooking, fault: "database error once", card: payment.TokenCaptureFail,
		inject: dbErr("cancel", onCancel, 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateCancelBooking, fault: "refused (business)", card: payment.TokenCaptureFail,
		inject: dbRefuse("cancel", onCancel),
		want:   dead(berth.ECONFLICT, berth.BookingUnconfirmed, -1, berth.ChargeVoided, 0, 0, 0),
		after:  ptr(failedVoided.err(berth.ECONFLICT))},

	{saga: airline.ProcessBooking, step: airline.StateReleaseFlightSeat, fault: "database error once", card: payment.TokenCaptureFail,
		inject: dbErr("release", faults.OnRelease(), 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateReleaseFlightSeat, fault: "database error on all 6 attempts", card: payment.TokenCaptureFail,
		inject: dbErr("release", faults.OnRelease(), 0),
		want:   dead(berth.EUNAVAILABLE, berth.BookingCancelled, -1, berth.ChargeVoided, 0, 0, 0),
		after:  ptr(failedVoided.err(berth.EUNAVAILABLE))},
	{saga: airline.ProcessBooking, step: airline.StateReleaseFlightSeat, fault: "crash before the step commits", card: payment.TokenCaptureFail,
		inject: crash("release", faults.OnStepCommit(airline.ProcessBooking, compensated, 2)), want: failedVoided.err(berth.EPAYMENTDECLINED)},

	{saga: airline.ProcessBooking, step: airline.StateNotifyBookingFailed, fault: "database error once", card: payment.TokenCaptureFail,
		inject: dbErr("failed", faults.OnEvent(berth.EventBookingFailed), 1), want: failedVoided.err(berth.EPAYMENTDECLINED)},
	{saga: airline.ProcessBooking, step: airline.StateNotifyBookingFailed, fault: "database error on all 6 attempts", card: payment.TokenCaptureFail,
		inject: dbErr("failed", faults.OnEvent(berth.EventBookingFailed), 0),
		want:   dead(berth.EUNAVAILABLE, berth.BookingCancelled, 0, berth.ChargeVoided, 0, 0, 0),
		after:  ptr(failedVoided.err(berth.EUNAVAILABLE))},

	// cancelBooking of a confirmed booking: every step is past the point
	// of no return, so failures end in the dead-letter queue.
	{saga: airline.CancelBooking, step: "—", fault: "none", want: cancelled},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "provider error once", inject: pay(faults.OpRefund, faults.Transient, 1), want: cancelled},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "refund hangs once (10 s step timeout)", inject: pay(faults.OpRefund, faults.Hang, 1),
		want: cancelled, slow: true},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "refunded, reply lost", inject: pay(faults.OpRefund, faults.ReplyLost, 1), want: cancelled},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "refund refused (business)", inject: pay(faults.OpRefund, faults.Refuse, 0),
		want:  dead(berth.EPAYMENTDECLINED, berth.BookingConfirmed, -1, berth.ChargeCaptured, price, 0, price),
		after: ptr(cancelled)},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "refund keeps failing (`tok_refund_fail`)", card: payment.TokenRefundFail,
		want:  dead(berth.EUNAVAILABLE, berth.BookingConfirmed, -1, berth.ChargeCaptured, price, 0, price),
		after: ptr(cancelled)},
	{saga: airline.CancelBooking, step: airline.StateRefundPayment, fault: "crash after the refund, before its commit",
		inject: crash("refund", faults.OnStepCommit(airline.CancelBooking, forward, 0)), want: cancelled},
	{saga: airline.CancelBooking, step: airline.StateCancelBooking, fault: "database error on all 6 attempts", inject: dbErr("cancel", onCancel, 0),
		want:  dead(berth.EUNAVAILABLE, berth.BookingConfirmed, -1, berth.ChargeRefunded, price, price, price),
		after: ptr(cancelled)},
	{saga: airline.CancelBooking, step: airline.StateReleaseFlightSeat, fault: "database error on all 6 attempts", inject: dbErr("release", faults.OnRelease(), 0),
		want:  dead(berth.EUNAVAILABLE, berth.BookingCancelled, -1, berth.ChargeRefunded, price, price, price),
		after: ptr(cancelled)},
	{saga: airline.CancelBooking, step: airline.StateNotifyBookingCancelled, fault: "database error on all 6 attempts",
		inject: dbErr("cancelled", faults.OnEvent(berth.EventBookingCancelled), 0),
		want:   dead(berth.EUNAVAILABLE, berth.BookingCancelled, 0, berth.ChargeRefunded, price, price, price),
		after:  ptr(cancelled)},
	{saga: airline.CancelBooking, step: "loyalty job (BookingCancelled)", fault: "database error on every attempt", inject: dbErr("revoke", faults.OnLoyalty(berth.LoyaltyRevoke), 0),
		want:  outcome{Exec: berth.ExecutionSucceeded, Booking: berth.BookingCancelled, Charge: berth.ChargeRefunded, Captured: price, Refunded: price, Points: price, Dead: 1},
		after: ptr(cancelled)},
}

// TestFaultTable runs every fault case on a fresh SQLite database and checks
// the outcome, then heals the fault, redrives the dead-letter queue, checks
// every invariant and replays everything that may be replayed.
func TestFaultTable(t *testing.T) {
	t.Parallel()
	template := sqliteTemplate(t)
	var slow []int
	for i, c := range faultCases {
		if c.slow {
			slow = append(slow, i)
			continue
		}
		t.Run(faultCaseName(i), func(t *testing.T) {
			t.Parallel()
			runFaultCase(t, template, c)
		})
	}
	// The cases that wait out a real step timeout sleep side by side,
	// taking one slot of -parallel between them.
	t.Run("timeouts", func(t *testing.T) {
		if testing.Short() {
			t.Skip("waits for 10 s step timeouts")
		}
		t.Parallel()
		var wg sync.WaitGroup
		for _, i := range slow {
			wg.Go(func() { t.Run(faultCaseName(i), func(t *testing.T) { runFaultCase(t, template, faultCases[i]) }) })
		}
		wg.Wait()
	})
}

func faultCaseName(i int) string {
	c := faultCases[i]
	return fmt.Sprintf("%02d %s/%s/%s", i+1, c.saga, c.step, c.fault)
}

func runFaultCase(t *testing.T, template string, c faultCase) {
	r := newRig(t, template, c.retry)
	alice := customer("alice")
	capacity := 3
	if c.soldOut {
		capacity = 1
	}
	f := r.flight(1, capacity, price)
	if c.soldOut {
		if _, err := r.book(customer("bob"), f, payment.TokenVisa, "bob-1"); err != nil {
			t.Fatal(err)
		}
		r.drive(time.Time{})
	}
	before := r.available(f.ID)
	if c.saga == airline.ProcessBooking && c.inject != nil {
		c.inject(r)
	}
	card := c.card
	if card == "" {
		card = payment.TokenVisa
	}
	b, err := r.book(alice, f, card, "alice-1")
	if err != nil {
		t.Fatal(err)
	}
	xid := b.ExecutionID
	if c.outage > 0 {
		r.prov.SetDown(true)
		r.drive(r.clock.Now().Add(c.outage))
		r.prov.SetDown(false)
	}
	r.drive(time.Time{})
	if c.saga == airline.CancelBooking {
		if got := r.observe(b.ID, xid, before); got != succeeded {
			t.Fatalf("before the cancellation: %+v", got)
		}
		if c.inject != nil {
			c.inject(r)
		}
		if _, err := r.svc.CancelBooking(alice, b.ID); err != nil {
			t.Fatal(err)
		}
		xid = "cancel:" + b.ID
		r.drive(time.Time{})
	}
	if got := r.observe(b.ID, xid, before); got != c.want {
		t.Fatalf("outcome\n got %+v\nwant %+v", got, c.want)
	}
	if (c.inject != nil || c.outage > 0) && r.fs.Fired()+r.prov.Fired() == 0 {
		t.Fatal("the injected fault never fired")
	}
	// Whatever happened, the invariants that hold at every instant hold.
	if err := r.check(faults.Options{Quiescent: true}).Err(); err != nil {
		t.Fatal(err)
	}
	redriven := r.settle()
	switch {
	case c.after == nil && redriven > 0:
		t.Fatalf("%d executions were dead", redriven)
	case c.after != nil:
		if got := r.observe(b.ID, xid, before); got != *c.after {
			t.Fatalf("after heal and redrive\n got %+v\nwant %+v", got, *c.after)
		}
	}
	rep := r.check(faults.Options{Quiescent: true})
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Dead) > 0 {
		t.Fatalf("dead after settling: %v", rep.Dead)
	}
	reqs := map[string]replayable{"alice-1": {who: alice, flight: f.ID, card: card, price: price, booking: b.ID}}
	r.replay(faults.Options{}, reqs)
}

// available returns a flight's available seats.
func (r *rig) available(id string) int {
	r.t.Helper()
	var f *berth.Flight
	if err := r.db.View(r.ctx, func(tx berth.Tx) (err error) { f, err = tx.GetFlight(id); return err }); err != nil {
		r.t.Fatal(err)
	}
	return f.Available
}

// observe reads a booking's outcome; the provider's ledger must agree with
// berth's record of the charge.
func (r *rig) observe(bookingID, executionID string, seatsBefore int) outcome {
	r.t.Helper()
	var o outcome
	var ch *berth.Charge
	err := r.db.View(r.ctx, func(tx berth.Tx) error {
		x, err := tx.GetExecution(executionID)
		if err != nil {
			return err
		}
		b, err := tx.GetBooking(bookingID)
		if err != nil {
			return err
		}
		if ch, err = tx.GetCharge(b.PaymentToken); err != nil {
			return err
		}
		f, err := tx.GetFlight(b.ResourceID)
		if err != nil {
			return err
		}
		pts, err := tx.LoyaltyPoints(b.Customer)
		if err != nil {
			return err
		}
		n, err := tx.CountExecutions(berth.ExecutionDead)
		if err != nil {
			return err
		}
		o = outcome{Exec: x.Status, Booking: b.Status, Seats: f.Available - seatsBefore, Charge: ch.Status,
			Captured: ch.Captured, Refunded: ch.Refunded, Points: pts, Dead: n}
		if x.Status != berth.ExecutionSucceeded {
			o.Err, _, _ = strings.Cut(x.Error, ":")
		}
		return nil
	})
	if err != nil {
		r.t.Fatal(err)
	}
	c, rf, err := payment.Ledger(r.ctx, r.db, []string{ch.ProviderRef})
	if err != nil {
		r.t.Fatal(err)
	}
	if c != ch.Captured || rf != ch.Refunded {
		r.t.Fatalf("berth's charge %s says captured %d refunded %d; the provider's ledger %d and %d", ch.ID, ch.Captured, ch.Refunded, c, rf)
	}
	return o
}

// TestFaultTableDocumented checks that docs/RELIABILITY.md shows the fault
// table this test enforces. BERTH_UPDATE_DOCS=1 rewrites it.
func TestFaultTableDocumented(t *testing.T) {
	const path = "../docs/RELIABILITY.md"
	const begin, end = "<!-- fault-table:begin (generated by airline/faults_test.go; BERTH_UPDATE_DOCS=1 go test -run TestFaultTableDocumented ./airline/) -->\n", "<!-- fault-table:end -->"
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("%s lacks the fault-table markers", path)
	}
	table := renderFaultTable()
	if string(doc[i+len(begin):j]) == table {
		return
	}
	if os.Getenv("BERTH_UPDATE_DOCS") == "1" {
		out := string(doc[:i+len(begin)]) + table + string(doc[j:])
		if err := os.WriteFile(path, []byte(out), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Fatalf("%s's fault table is out of date: run BERTH_UPDATE_DOCS=1 go test -run TestFaultTableDocumented ./airline/", path)
}

func renderFaultTable() string {
	var b strings.Builder
	b.WriteString("| # | saga | step | fault | ends as | error | booking | seats | charge | captured / refunded | points | DLQ | after fix + redrive |\n")
	b.WriteString("|---|---|---|---|---|---|---|---|---|---|---|---|---|\n")
	for i, c := range faultCases {
		o := c.want
		after := "—"
		if c.after != nil {
			a := *c.after
			after = fmt.Sprintf("%s, %s, seats %+d, %s %d/%d, points %d", a.Exec, a.Booking, a.Seats, a.Charge, a.Captured, a.Refunded, a.Points)
		}
		errCode := o.Err
		if errCode == "" {
			errCode = "—"
		}
		fault := c.fault
		if c.slow {
			fault += " ⏱"
		}
		fmt.Fprintf(&b, "| %d | %s | %s | %s | %s | %s | %s | %+d | %s | %d / %d | %d | %d | %s |\n", i+1, c.saga, c.step, fault, o.Exec, errCode,
			o.Booking, o.Seats, o.Charge, o.Captured, o.Refunded, o.Points, o.Dead, after)
	}
	return b.String()
}
