package faults

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"slices"
	"sort"
	"strings"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

// Options select what Check looks at.
type Options struct {
	// Flights restricts the check to these flights, their bookings, the
	// bookings' charges and executions, and their customers' loyalty
	// (customers must then not book other flights). Empty: everything.
	Flights []string
	// Quiescent says nothing is left to run: every execution has ended
	// (SUCCEEDED or FAILED) or is DEAD. Bookings whose executions all
	// ended must then be fully settled; a RUNNING execution is a violation.
	Quiescent bool
}

// Report is what Check found.
type Report struct {
	Flights, Bookings int
	ByStatus          map[berth.BookingStatus]int
	Executions        map[berth.ExecutionStatus]int
	Dead              []string // ids of dead executions, sorted
	Capacity, Sold    int      // seats over all flights checked
	Confirmed         int64    // Σ prices of CONFIRMED bookings
	Captured          int64    // berth's charges: Σ captured
	Refunded          int64    // berth's charges: Σ refunded
	ProviderCaptured  int64    // the simulated provider's ledger
	ProviderRefunded  int64
	Points            int64 // Σ loyalty points of the customers checked
	// Effects is every externally visible effect (seats, bookings,
	// tickets, charges, the provider's ledger, loyalty, events), by name:
	// two reports with equal Effects saw the same world. Replaying a
	// request, a redrive or an event must leave it unchanged.
	Effects    map[string]string
	Violations []string
}

func (r *Report) violate(format string, args ...any) {
	r.Violations = append(r.Violations, fmt.Sprintf(format, args...))
}

// Err returns nil when no invariant is broken, else an error listing the
// violations (the first 30).
func (r *Report) Err() error {
	if len(r.Violations) == 0 {
		return nil
	}
	v := r.Violations
	more := ""
	if len(v) > 30 {
		more = fmt.Sprintf("\n… and %d more", len(v)-30)
		v = v[:30]
	}
	return fmt.Errorf("%d invariant violation(s):\n  %s%s", len(r.Violations), strings.Join(v, "\n  "), more)
}

// String summarizes the report on one line.
func (r *Report) String() string {
	return fmt.Sprintf("%d flights, %d/%d seats sold, bookings %v, executions %v, %d dead; confirmed %d, captured %d − refunded %d (provider %d − %d), points %d, %d violations",
		r.Flights, r.Sold, r.Capacity, r.ByStatus, r.Executions, len(r.Dead), r.Confirmed, r.Captured, r.Refunded,
		r.ProviderCaptured, r.ProviderRefunded, r.Points, len(r.Violations))
}

// EffectsDiff lists the effects that differ between two reports.
func EffectsDiff(before, after *Report) []string {
	var out []string
	keys := slices.Sorted(maps.Keys(before.Effects))
	for _, k := range keys {
		if a, ok := after.Effects[k]; !ok || a != before.Effects[k] {
			out = append(out, fmt.Sprintf("%s: %q → %q", k, before.Effects[k], a))
		}
	}
	for _, k := range slices.Sorted(maps.Keys(after.Effects)) {
		if _, ok := before.Effects[k]; !ok {
			out = append(out, fmt.Sprintf("%s: new %q", k, after.Effects[k]))
		}
	}
	return out
}

// providerAuth mirrors the simulated provider's record of an authorization
// (payment.Simulated keeps it as JSON in the "paysim.auth" key space).
type providerAuth struct {
	Status   string `json:"status"`
	Captured int64  `json:"captured"`
	Refunded int64  `json:"refunded"`
}

// adminHoldPrefix is the hold key prefix of bookings made by createBooking.
const adminHoldPrefix = "admin:"

func holdKey(b *berth.Booking) string {
	if b.ExecutionID == "" {
		return adminHoldPrefix + b.ID
	}
	return b.ExecutionID + ":seat"
}

// Check reads the store in one snapshot and checks berth's promises:
//
//   - seats: 0 ≤ available ≤ capacity and capacity − available = the seats
//     held by bookings; a CONFIRMED booking holds its seat and one BOOKED
//     ticket; no booking has two tickets, no ticket code is used twice; once
//     settled, seats sold = CONFIRMED bookings (+ UNCONFIRMED ones holding
//     a seat while in flight);
//   - money: never more captured than the price or refunded than captured;
//     berth's record never claims what the provider did not do; once
//     settled, a CONFIRMED booking's charge is captured at exactly its price
//     and a CANCELLED one's is VOIDED or fully REFUNDED — at the provider
//     too (no authorization left AUTHORIZED); Σ captured − refunded (berth's
//     charges and the provider's ledger) = Σ prices of CONFIRMED bookings;
//   - executions: with Quiescent, none is RUNNING;
//   - events: at most one of each booking event per booking;
//   - loyalty: once settled, a customer's points = Σ prices of their
//     CONFIRMED bookings.
//
// A booking with a DEAD (or, without Quiescent, RUNNING) execution is not
// settled: only the always-true invariants apply to it, and it is left out
// of the sums on both sides.
func Check(ctx context.Context, db berth.Store, o Options) (*Report, error) {
	r := &Report{ByStatus: map[berth.BookingStatus]int{}, Executions: map[berth.ExecutionStatus]int{}, Effects: map[string]string{}}
	var refs []string
	err := db.View(ctx, func(tx berth.Tx) error {
		flights, err := listFlights(tx, o.Flights)
		if err != nil {
			return err
		}
		inScope := map[string]*berth.Flight{}
		for _, f := range flights {
			inScope[f.ID] = f
		}
		bookings, err := listBookings(tx, func(b *berth.Booking) bool { return inScope[b.ResourceID] != nil })
		if err != nil {
			return err
		}
		byID := map[string]*berth.Booking{}
		for _, b := range bookings {
			byID[b.ID] = b
		}
		// Executions about the bookings (sagas, event jobs, deliveries).
		pending := map[string]bool{} // booking ids with a RUNNING or DEAD execution
		execs := map[string][]*berth.Execution{}
		all := len(o.Flights) == 0
		err = eachExecution(tx, func(x *berth.Execution) {
			if !all && byID[x.Correlation] == nil {
				return
			}
			r.Executions[x.Status]++
			execs[x.Correlation] = append(execs[x.Correlation], x)
			switch x.Status {
			case berth.ExecutionDead:
				r.Dead = append(r.Dead, x.ID)
				pending[x.Correlation] = true
			case berth.ExecutionRunning:
				pending[x.Correlation] = true
				if o.Quiescent {
					r.violate("execution %s (%s, %s step %d) is still RUNNING", x.ID, x.Definition, x.Phase, x.Step)
				}
			}
		})
		if err != nil {
			return err
		}
		sort.Strings(r.Dead)

		held := map[string]int{}    // flight → seats held by bookings
		tickets := map[string]int{} // flight → BOOKED tickets
		confirmed := map[string]int{}
		codes := map[string]string{}
		refsSeen := map[string]string{}
		customers := map[string]int64{} // customer → Σ prices of settled CONFIRMED bookings
		unsettledCustomer := map[string]bool{}
		for _, b := range bookings {
			r.Bookings++
			r.ByStatus[b.Status]++
			settled := o.Quiescent && !pending[b.ID]
			if _, ok := customers[b.Customer]; !ok {
				customers[b.Customer] = 0
			}
			if !settled {
				unsettledCustomer[b.Customer] = true
			}
			h, err := tx.GetHold(holdKey(b))
			if err != nil && berth.ErrorCode(err) != berth.ENOTFOUND {
				return err
			}
			holding := err == nil && h.Status == berth.HoldHeld
			if holding {
				held[b.ResourceID] += h.Quantity
			}
			ts, err := tx.ListTickets(b.ID)
			if err != nil {
				return err
			}
			booked := 0
			for _, t := range ts {
				if other, dup := codes[t.Code]; dup {
					r.violate("ticket code %s used by bookings %s and %s", t.Code, other, b.ID)
				}
				codes[t.Code] = b.ID
				if t.Status == berth.TicketBooked {
					booked++
				}
				r.Effects["ticket "+t.Code] = string(t.Status)
			}
			tickets[b.ResourceID] += booked
			r.Effects["booking "+b.ID] = string(b.Status) + " " + b.Reference
			r.Effects["hold "+holdKey(b)] = fmt.Sprint(holding)
			switch {
			case booked > b.Quantity:
				r.violate("booking %s has %d BOOKED tickets for %d seat(s)", b.ID, booked, b.Quantity)
			case booked > 0 && !holding:
				r.violate("booking %s (%s) has a BOOKED ticket but holds no seat", b.ID, b.Status)
			}
			if b.Status == berth.BookingConfirmed {
				confirmed[b.ResourceID]++
				if !holding || booked != b.Quantity {
					r.violate("CONFIRMED booking %s: seat held %v, %d BOOKED ticket(s)", b.ID, holding, booked)
				}
				if b.Reference != "" {
					if other, dup := refsSeen[b.Reference]; dup {
						r.violate("booking reference %s given to %s and %s", b.Reference, other, b.ID)
					}
					refsSeen[b.Reference] = b.ID
				} else {
					r.violate("CONFIRMED booking %s has no reference", b.ID)
				}
			}
			if err := checkEvents(tx, r, b, settled, execs[b.ID]); err != nil {
				return err
			}
			if settled {
				switch b.Status {
				case berth.BookingUnconfirmed:
					r.violate("booking %s is UNCONFIRMED although nothing is running for it", b.ID)
				case berth.BookingCancelled, berth.BookingExpired:
					if holding || booked > 0 {
						r.violate("%s booking %s still holds a seat (%v) or a ticket (%d)", b.Status, b.ID, holding, booked)
					}
				}
			}
			if b.ExecutionID == "" {
				continue // made by createBooking (Admin): no payment
			}
			ch, err := tx.GetCharge(b.PaymentToken)
			if err != nil {
				r.violate("booking %s: its charge %s: %v", b.ID, b.PaymentToken, err)
				continue
			}
			refs = append(refs, ch.ProviderRef)
			var pa providerAuth
			raw, err := tx.GetKV("paysim.auth", ch.ProviderRef)
			if err != nil {
				return fmt.Errorf("faults: provider record of %s: %w", ch.ProviderRef, err)
			}
			if err := json.Unmarshal(raw, &pa); err != nil {
				return fmt.Errorf("faults: provider record of %s: %w", ch.ProviderRef, err)
			}
			r.Effects["charge "+ch.ID] = fmt.Sprintf("%s %d/%d", ch.Status, ch.Captured, ch.Refunded)
			r.Effects["provider "+ch.ProviderRef] = fmt.Sprintf("%s %d/%d", pa.Status, pa.Captured, pa.Refunded)
			checkMoney(r, b, ch, &pa, settled)
			if settled {
				r.Captured += ch.Captured
				r.Refunded += ch.Refunded
				r.ProviderCaptured += pa.Captured
				r.ProviderRefunded += pa.Refunded
				if b.Status == berth.BookingConfirmed {
					r.Confirmed += b.Price
					customers[b.Customer] += b.Price
				}
			}
		}
		for _, f := range flights {
			r.Flights++
			r.Capacity += f.Capacity
			sold := f.Capacity - f.Available
			r.Sold += sold
			r.Effects["flight "+f.ID] = fmt.Sprint(f.Available)
			switch {
			case f.Available < 0 || f.Available > f.Capacity:
				r.violate("flight %s: %d seats available of %d", f.ID, f.Available, f.Capacity)
			case sold != held[f.ID]:
				r.violate("flight %s: %d seats sold but bookings hold %d", f.ID, sold, held[f.ID])
			case tickets[f.ID] > sold:
				r.violate("flight %s: %d BOOKED tickets for %d seats sold (a seat sold twice)", f.ID, tickets[f.ID], sold)
			case confirmed[f.ID] > sold:
				r.violate("flight %s: %d CONFIRMED bookings for %d seats sold", f.ID, confirmed[f.ID], sold)
			}
		}
		if o.Quiescent {
			if r.Captured-r.Refunded != r.Confirmed {
				r.violate("berth's charges: captured %d − refunded %d ≠ %d, the prices of the confirmed bookings", r.Captured, r.Refunded, r.Confirmed)
			}
			if r.ProviderCaptured-r.ProviderRefunded != r.Confirmed {
				r.violate("provider's ledger: captured %d − refunded %d ≠ %d, the prices of the confirmed bookings", r.ProviderCaptured, r.ProviderRefunded, r.Confirmed)
			}
		}
		for _, c := range slices.Sorted(maps.Keys(customers)) {
			pts, err := tx.LoyaltyPoints(c)
			if err != nil {
				return err
			}
			r.Points += pts
			r.Effects["loyalty "+c] = fmt.Sprint(pts)
			if o.Quiescent && !unsettledCustomer[c] && pts != customers[c] {
				r.violate("customer %s has %d loyalty points, but their confirmed bookings are worth %d", c, pts, customers[c])
			}
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if o.Quiescent && len(r.Dead) == 0 && len(refs) > 0 {
		// The provider's own totals, through its public API.
		c, rf, err := payment.Ledger(ctx, db, refs)
		if err != nil {
			return nil, err
		}
		if c-rf != r.Confirmed {
			r.violate("payment.Ledger: captured %d − refunded %d ≠ %d, the prices of the confirmed bookings", c, rf, r.Confirmed)
		}
	}
	return r, nil
}

// checkMoney checks one booking's charge against the provider's record.
func checkMoney(r *Report, b *berth.Booking, ch *berth.Charge, pa *providerAuth, settled bool) {
	switch {
	case ch.Captured > b.Price || ch.Captured > ch.Amount:
		r.violate("charge %s captured %d for a booking priced %d (authorized %d)", ch.ID, ch.Captured, b.Price, ch.Amount)
	case ch.Refunded > ch.Captured:
		r.violate("charge %s refunded %d of %d captured", ch.ID, ch.Refunded, ch.Captured)
	case pa.Captured > b.Price || pa.Refunded > pa.Captured:
		r.violate("provider %s captured %d, refunded %d, for a booking priced %d", ch.ProviderRef, pa.Captured, pa.Refunded, b.Price)
	}
	// berth's record never claims more than the provider did. It may lag
	// behind: a step's call went through and its commit is still to come.
	switch ch.Status {
	case berth.ChargeCaptured:
		if pa.Status != "CAPTURED" || pa.Captured != ch.Captured || settled && pa.Refunded != 0 {
			r.violate("charge %s is CAPTURED %d but the provider has %s %d/%d", ch.ID, ch.Captured, pa.Status, pa.Captured, pa.Refunded)
		}
	case berth.ChargeRefunded:
		if pa.Refunded != ch.Refunded || pa.Captured != ch.Captured {
			r.violate("charge %s is REFUNDED %d/%d but the provider has %s %d/%d", ch.ID, ch.Captured, ch.Refunded, pa.Status, pa.Captured, pa.Refunded)
		}
	case berth.ChargeVoided:
		if pa.Status != "VOIDED" {
			r.violate("charge %s is VOIDED but the provider has it %s", ch.ID, pa.Status)
		}
	}
	if !settled {
		return
	}
	switch b.Status {
	case berth.BookingConfirmed:
		if ch.Status != berth.ChargeCaptured || ch.Captured != b.Price || pa.Captured != b.Price || pa.Refunded != 0 {
			r.violate("CONFIRMED booking %s: charge %s %d/%d, provider %s %d/%d, price %d", b.ID, ch.Status, ch.Captured, ch.Refunded,
				pa.Status, pa.Captured, pa.Refunded, b.Price)
		}
	case berth.BookingCancelled, berth.BookingExpired:
		if pa.Status == "AUTHORIZED" || ch.Status == berth.ChargeAuthorized {
			r.violate("%s booking %s left its authorization dangling (berth %s, provider %s)", b.Status, b.ID, ch.Status, pa.Status)
		}
		if ch.Captured != ch.Refunded || pa.Captured != pa.Refunded {
			r.violate("%s booking %s kept money: berth %d/%d, provider %d/%d", b.Status, b.ID, ch.Captured, ch.Refunded, pa.Captured, pa.Refunded)
		}
	}
}

// checkEvents checks a booking's events against its status.
func checkEvents(tx berth.Tx, r *Report, b *berth.Booking, settled bool, xs []*berth.Execution) error {
	evs, err := tx.ListEvents(berth.EventQuery{Subject: b.ID, Limit: 1000})
	if err != nil {
		return err
	}
	n := map[string]int{}
	for _, e := range evs {
		n[e.Type]++
	}
	for typ, c := range n {
		r.Effects["events "+b.ID+" "+typ] = fmt.Sprint(c)
		if c > 1 {
			r.violate("booking %s has %d %s events", b.ID, c, typ)
		}
	}
	if !settled || b.ExecutionID == "" {
		return nil
	}
	var process, cancel *berth.Execution
	for _, x := range xs {
		switch x.ID {
		case b.ExecutionID:
			process = x
		case "cancel:" + b.ID:
			cancel = x
		}
	}
	switch {
	case process == nil:
		r.violate("booking %s has no processBooking execution %s", b.ID, b.ExecutionID)
	case b.Status == berth.BookingConfirmed:
		if process.Status != berth.ExecutionSucceeded || n[berth.EventBookingConfirmed] != 1 || n[berth.EventBookingFailed] != 0 {
			r.violate("CONFIRMED booking %s: execution %s, %d BookingConfirmed and %d BookingFailed events", b.ID, process.Status,
				n[berth.EventBookingConfirmed], n[berth.EventBookingFailed])
		}
	case b.Status == berth.BookingCancelled && cancel != nil:
		if cancel.Status != berth.ExecutionSucceeded || n[berth.EventBookingCancelled] != 1 {
			r.violate("cancelled booking %s: cancelBooking %s, %d BookingCancelled events", b.ID, cancel.Status, n[berth.EventBookingCancelled])
		}
	case b.Status == berth.BookingCancelled:
		if process.Status != berth.ExecutionFailed || n[berth.EventBookingFailed] != 1 || n[berth.EventBookingConfirmed] != 0 {
			r.violate("failed booking %s: execution %s, %d BookingFailed and %d BookingConfirmed events", b.ID, process.Status,
				n[berth.EventBookingFailed], n[berth.EventBookingConfirmed])
		}
	}
	return nil
}

func listFlights(tx berth.Tx, ids []string) ([]*berth.Flight, error) {
	if len(ids) > 0 {
		m, err := tx.GetFlights(ids)
		if err != nil {
			return nil, err
		}
		out := make([]*berth.Flight, 0, len(m))
		for _, id := range slices.Sorted(maps.Keys(m)) {
			out = append(out, m[id])
		}
		return out, nil
	}
	var out []*berth.Flight
	var after *berth.Cursor
	for {
		fs, err := tx.ListFlights(berth.FlightQuery{Page: berth.Page{After: after, Limit: 1000}})
		if err != nil {
			return nil, err
		}
		out = append(out, fs...)
		if len(fs) < 1000 {
			return out, nil
		}
		after = &berth.Cursor{ID: fs[len(fs)-1].ID}
	}
}

func listBookings(tx berth.Tx, keep func(*berth.Booking) bool) ([]*berth.Booking, error) {
	var out []*berth.Booking
	var after *berth.Cursor
	for {
		bs, err := tx.ListBookings(berth.BookingQuery{Page: berth.Page{After: after, Limit: 1000}})
		if err != nil {
			return nil, err
		}
		for _, b := range bs {
			if keep(b) {
				out = append(out, b)
			}
		}
		if len(bs) < 1000 {
			return out, nil
		}
		after = &berth.Cursor{ID: bs[len(bs)-1].ID}
	}
}

func eachExecution(tx berth.Tx, fn func(*berth.Execution)) error {
	var after *berth.Cursor
	for {
		xs, err := tx.ListExecutions(berth.ExecutionQuery{Page: berth.Page{After: after, Limit: 1000}})
		if err != nil {
			return err
		}
		for _, x := range xs {
			fn(x)
		}
		if len(xs) < 1000 {
			return nil
		}
		after = &berth.Cursor{ID: xs[len(xs)-1].ID}
	}
}
