package airline_test

import (
	"flag"
	"fmt"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"pgregory.net/rapid"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
)

// The property test is a state machine: random interleavings of booking,
// cancelling, replaying requests, letting time pass (retries, hold
// expiry), crashing the process at a random commit and starting a new one,
// payment provider outages and lost replies, database errors, redriving
// dead letters and redelivering events — checked against the invariants
// after every action, and fully (money, loyalty, idempotency) once
// everything has settled.
//
// The number of cases is rapid's -rapid.checks (default 100) on SQLite and
// a fifth of it on PostgreSQL; under the race detector a tenth and a
// twentieth (see caseBudget); -rapid.steps (default 30) is the mean number of actions
// per case. A long run, as `make chaos` does:
//
//	go test -run TestBookingStateMachine ./airline/ -rapid.checks=2000 -rapid.steps=100 -timeout 1h
func TestBookingStateMachine(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		t.Parallel()
		st := &stats{}
		defer st.log(t)
		template := sqliteTemplate(t)
		budget := caseBudget(1, 10)
		var n atomic.Int64
		rapid.Check(t, func(rt *rapid.T) {
			if n.Add(1) > budget {
				return // see caseBudget
			}
			r := newRig(t, template, fastRetry)
			r.t = rt
			runModel(rt, r, "", st)
		})
	})
	t.Run("postgres", func(t *testing.T) {
		t.Parallel()
		testdb.URL(t, "postgres") // skips (or fails, in CI) without PostgreSQL
		budget := caseBudget(5, 4)
		var n atomic.Int64
		st := &stats{}
		defer st.log(t)
		rapid.Check(t, func(rt *rapid.T) {
			if n.Add(1) > budget {
				return // see caseBudget
			}
			// A fresh database per case, dropped when the case ends.
			sc := &scope{TB: t}
			defer sc.close()
			r := newRig(sc, testdb.URL(sc, "postgres"), fastRetry)
			r.t = rt
			runModel(rt, r, "", st)
		})
	})
}

func init() {
	// Report a failing case's seed (-rapid.seed=N reproduces it) rather
	// than leave fail files in the source tree; -rapid.nofailfile=false
	// brings them back.
	_ = flag.Set("rapid.nofailfile", "true")
}

// scope is a testing.TB whose cleanups run when close is called, not when
// the test ends: resources that live for one rapid case.
type scope struct {
	testing.TB
	cleanups []func()
}

func (s *scope) Cleanup(f func()) { s.cleanups = append(s.cleanups, f) }

func (s *scope) close() {
	for i := len(s.cleanups) - 1; i >= 0; i-- {
		s.cleanups[i]()
	}
}

// fastRetry keeps cases short: 4 attempts, 200 ms doubling.
var fastRetry = saga.RetryPolicy{MaxAttempts: 4, Initial: 200 * time.Millisecond, Max: 5 * time.Second}

// caseBudget is how many of rapid's -rapid.checks cases really run: all of
// them divided by div (a PostgreSQL case costs more than an SQLite one),
// and that divided by raceDiv under the race detector, which slows the
// pure-Go SQLite driver about tenfold. The other cases pass at once.
func caseBudget(div, raceDiv int) int64 {
	n := 100
	if f := flag.Lookup("rapid.checks"); f != nil {
		if v, err := strconv.Atoi(f.Value.String()); err == nil {
			n = v
		}
	}
	n /= div
	if raceEnabled {
		n /= raceDiv
	}
	return int64(max(n, 1))
}

// stats are the figures of a property run, for docs/RELIABILITY.md.
type stats struct {
	cases, actions, bookings, admin, confirmed, failed, cancelled, timeouts, crashes, faults, redrives, replays atomic.Int64
}

func (s *stats) log(t *testing.T) {
	t.Logf("%d cases, %d actions: %d bookings (%d by createBooking) → %d confirmed (%d of them then cancelled), %d failed (%d by hold expiry); "+
		"%d crashes, %d injected faults fired, %d dead letters redriven, %d requests replayed; 0 invariant violations",
		s.cases.Load(), s.actions.Load(), s.bookings.Load(), s.admin.Load(), s.confirmed.Load()+s.cancelled.Load(), s.cancelled.Load(), s.failed.Load(),
		s.timeouts.Load(), s.crashes.Load(), s.faults.Load(), s.redrives.Load(), s.replays.Load())
}

// model is the state machine's view of the world: what it asked for. The
// truth is in the database; the invariants relate the two.
type model struct {
	r         *rig
	prefix    string
	flights   []*berth.Flight
	flightIDs []string
	customers []string
	requests  map[string]replayable // by idempotency key
	keys      []string
	bookings  []string
	admin     []string // bookings made by createBooking
	n         int
	st        *stats
	redrives  int
}

func runModel(rt *rapid.T, r *rig, prefix string, st *stats) {
	m := &model{r: r, prefix: prefix, requests: map[string]replayable{}, st: st}
	r.restartByLease = rapid.Bool().Draw(rt, "restart by lease expiry")
	for i := range rapid.IntRange(1, 2).Draw(rt, "flights") {
		f := r.flight(100+i, rapid.IntRange(1, 3).Draw(rt, "capacity"), int64(rapid.IntRange(1, 5).Draw(rt, "price")*1000))
		m.flights = append(m.flights, f)
		m.flightIDs = append(m.flightIDs, f.ID)
	}
	for i := range 3 {
		m.customers = append(m.customers, fmt.Sprintf("%scustomer-%d", prefix, i))
	}
	rt.Repeat(map[string]func(*rapid.T){
		"book":      m.book,
		"adminBook": m.adminBook,
		"adminDrop": m.adminCancel,
		"replay":    m.replay,
		"cancel":    m.cancel,
		"tick":      func(rt *rapid.T) { m.tick(rt) },
		"tick2":     func(rt *rapid.T) { m.tick(rt) }, // twice as likely
		"drive":     m.drive,
		"wait":      m.wait,
		"expire":    m.expire,
		"crash":     m.crash,
		"outage":    m.outage,
		"replyLost": m.replyLost,
		"dbError":   m.dbError,
		"redrive":   m.redrive,
		"redeliver": m.redeliver,
		"": func(rt *rapid.T) {
			st.actions.Add(1)
			m.invariants(rt)
		},
	})
	m.settle(rt)
}

func (m *model) fail(rt *rapid.T, err error) {
	if err != nil {
		rt.Fatal(err)
	}
}

func (m *model) book(rt *rapid.T) {
	who := rapid.SampledFrom(m.customers).Draw(rt, "customer")
	f := rapid.SampledFrom(m.flights).Draw(rt, "flight")
	card := rapid.SampledFrom([]string{payment.TokenVisa, payment.TokenVisa, payment.TokenVisa, payment.TokenCaptureFail, payment.TokenRefundFail}).Draw(rt, "card")
	m.n++
	key := fmt.Sprintf("%sk%d", m.prefix, m.n)
	b, err := m.r.book(customer(who), f, card, key)
	switch {
	case berth.ErrorCode(err) == berth.EUNAVAILABLE:
		return // the provider is down: createCharge refused, nothing booked
	case err != nil:
		rt.Fatalf("book: %v", err)
	}
	m.requests[key] = replayable{who: customer(who), flight: f.ID, card: card, price: f.Price, booking: b.ID}
	m.keys = append(m.keys, key)
	m.bookings = append(m.bookings, b.ID)
}

// adminBook has an Admin record a booking directly (createBooking).
func (m *model) adminBook(rt *rapid.T) {
	who := rapid.SampledFrom(m.customers).Draw(rt, "customer")
	f := rapid.SampledFrom(m.flights).Draw(rt, "flight")
	b, err := m.r.svc.CreateBooking(m.r.admin, airline.AdminBookingInput{FlightID: f.ID, Customer: who, Status: berth.BookingConfirmed})
	switch berth.ErrorCode(err) {
	case "":
	case berth.ESOLDOUT, berth.EUNAVAILABLE: // full, or an injected database error
		return
	default:
		rt.Fatalf("createBooking: %v", err)
	}
	m.admin = append(m.admin, b.ID)
	m.bookings = append(m.bookings, b.ID)
}

// adminCancel has an Admin cancel a createBooking booking (updateBooking).
func (m *model) adminCancel(rt *rapid.T) {
	if len(m.admin) == 0 {
		rt.Skip("no booking made by createBooking")
	}
	st := berth.BookingCancelled
	_, err := m.r.svc.UpdateBooking(m.r.admin, rapid.SampledFrom(m.admin).Draw(rt, "booking"), airline.AdminBookingPatch{Status: &st})
	if err != nil && berth.ErrorCode(err) != berth.EUNAVAILABLE { // an injected database error
		rt.Fatalf("updateBooking: %v", err)
	}
}

// replay sends a booking request again with its idempotency key: the same
// booking comes back, nothing else happens.
func (m *model) replay(rt *rapid.T) {
	if len(m.keys) == 0 {
		rt.Skip("nothing to replay")
	}
	key := rapid.SampledFrom(m.keys).Draw(rt, "request")
	req := m.requests[key]
	ch, err := m.r.svc.Charges().Create(req.who, req.price, "EUR", req.card, "charge-"+key)
	m.fail(rt, err)
	b, err := m.r.svc.ProcessBooking(req.who, airline.BookingRequest{FlightID: req.flight, PaymentToken: ch.ID, IdempotencyKey: key})
	if err != nil || b.ID != req.booking {
		rt.Fatalf("replay of %s: %v, booking %v, want %s", key, err, b, req.booking)
	}
	m.st.replays.Add(1)
}

func (m *model) cancel(rt *rapid.T) {
	if len(m.bookings) == 0 {
		rt.Skip("nothing to cancel")
	}
	id := rapid.SampledFrom(m.bookings).Draw(rt, "booking")
	var b *berth.Booking
	m.fail(rt, m.r.db.View(m.r.ctx, func(tx berth.Tx) (err error) { b, err = tx.GetBooking(id); return err }))
	_, err := m.r.svc.CancelBooking(customer(b.Customer), id)
	switch code := berth.ErrorCode(err); {
	case err == nil:
	case code == berth.ECONFLICT && b.Status == berth.BookingUnconfirmed:
	case code == berth.EUNAVAILABLE: // an earlier cancellation is dead-lettered
	default:
		rt.Fatalf("cancelBooking of a %s booking: %v", b.Status, err)
	}
}

// tick runs every due execution once; a crash restarts the process.
func (m *model) tick(rt *rapid.T) {
	_, err := m.r.engine.Tick(m.r.ctx)
	if m.r.fs.Crashed() {
		m.r.restart()
		return
	}
	m.fail(rt, err)
}

func (m *model) wait(rt *rapid.T) {
	m.r.clock.Advance(time.Duration(rapid.IntRange(0, 5000).Draw(rt, "ms")) * time.Millisecond)
	m.tick(rt)
}

// drive lets time pass until every execution has ended or is dead.
func (m *model) drive(rt *rapid.T) { m.r.drive(time.Time{}) }

// expire lets the hold time pass.
func (m *model) expire(rt *rapid.T) {
	m.r.clock.Advance(m.r.hold + time.Minute)
	m.tick(rt)
}

// crash kills the process at the nth commit of a saga step from now (if
// that many happen before the next tick ends, else later), then starts
// a new one on the same database.
func (m *model) crash(rt *rapid.T) {
	n := rapid.IntRange(1, 4).Draw(rt, "commit")
	m.r.fs.Inject(faults.TxFault{Name: "crash", Match: faults.OnNthCommit(n), Times: 1, Crash: true})
	m.tick(rt)
}

func (m *model) outage(rt *rapid.T) {
	m.r.prov.SetDown(rapid.Bool().Draw(rt, "down"))
}

func (m *model) replyLost(rt *rapid.T) {
	op := rapid.SampledFrom([]faults.Op{faults.OpCapture, faults.OpVoid, faults.OpRefund, faults.OpAuthorize}).Draw(rt, "op")
	m.r.prov.Inject(faults.Fault{Op: op, Kind: faults.ReplyLost, Times: 1})
}

func (m *model) dbError(rt *rapid.T) {
	matchers := map[string]func(faults.Call) bool{
		"reserve": faults.OnReserve(), "ticket": faults.OnCreateTicket(), "release": faults.OnRelease(),
		"confirm": faults.OnBookingStatus(berth.BookingConfirmed), "cancel": faults.OnBookingStatus(berth.BookingCancelled),
		"capture": faults.OnChargeStatus(berth.ChargeCaptured), "void": faults.OnChargeStatus(berth.ChargeVoided),
		"refund": faults.OnChargeStatus(berth.ChargeRefunded), "confirmed": faults.OnEvent(berth.EventBookingConfirmed),
		"failed": faults.OnEvent(berth.EventBookingFailed), "earn": faults.OnLoyalty(berth.LoyaltyEarn),
		"revoke": faults.OnLoyalty(berth.LoyaltyRevoke),
	}
	name := rapid.SampledFrom([]string{"reserve", "ticket", "release", "confirm", "cancel", "capture", "void", "refund", "confirmed", "failed", "earn", "revoke"}).Draw(rt, "at")
	m.r.fs.Inject(faults.TxFault{Name: name, Match: matchers[name], Times: rapid.IntRange(1, 5).Draw(rt, "times")})
}

func (m *model) redrive(rt *rapid.T) {
	ids, err := faults.DeadIDs(m.r.ctx, m.r.db)
	m.fail(rt, err)
	if len(ids) == 0 {
		rt.Skip("nothing dead")
	}
	if rapid.Bool().Draw(rt, "heal first") {
		m.r.heal()
	}
	_, err = saga.Redrive(m.r.ctx, m.r.db, rapid.SampledFrom(ids).Draw(rt, "execution"))
	m.fail(rt, err)
	m.redrives++
}

// redeliver re-runs every finished event-handler job.
func (m *model) redeliver(rt *rapid.T) {
	_, err := faults.Redeliver(m.r.ctx, m.r.db, "")
	m.fail(rt, err)
}

func (m *model) invariants(rt *rapid.T) {
	rep, err := faults.Check(m.r.ctx, m.r.db, faults.Options{Flights: m.flightIDs})
	m.fail(rt, err)
	m.fail(rt, rep.Err())
}

// settle ends every outage and fault, redrives the dead-letter queue until
// everything has ended, and checks every invariant, then that replaying
// every request, redriving finished executions and redelivering every
// event changes nothing.
func (m *model) settle(rt *rapid.T) {
	m.redrives += m.r.settle()
	o := faults.Options{Flights: m.flightIDs, Quiescent: true}
	rep, err := faults.Check(m.r.ctx, m.r.db, o)
	m.fail(rt, err)
	m.fail(rt, rep.Err())
	if len(rep.Dead) > 0 {
		rt.Fatalf("dead after settling: %v", rep.Dead)
	}
	m.r.replay(o, m.requests)
	m.st.replays.Add(int64(len(m.requests)))

	m.st.cases.Add(1)
	m.st.bookings.Add(int64(rep.Bookings))
	m.st.admin.Add(int64(len(m.admin)))
	m.st.confirmed.Add(int64(rep.ByStatus[berth.BookingConfirmed]))
	m.st.crashes.Add(int64(m.r.boots - 1))
	m.st.faults.Add(int64(m.r.fs.Fired() + m.r.prov.Fired()))
	m.st.redrives.Add(int64(m.redrives))
	m.fail(rt, m.r.db.View(m.r.ctx, func(tx berth.Tx) error {
		for _, id := range m.bookings {
			b, err := tx.GetBooking(id)
			if err != nil {
				return err
			}
			if b.Status != berth.BookingCancelled {
				continue
			}
			if _, err := tx.GetExecution("cancel:" + id); err == nil {
				m.st.cancelled.Add(1)
				continue
			}
			if b.ExecutionID == "" {
				continue // made and cancelled by an Admin
			}
			m.st.failed.Add(1)
			x, err := tx.GetExecution(b.ExecutionID)
			if err != nil {
				return err
			}
			if strings.HasPrefix(x.Error, berth.ETIMEOUT) {
				m.st.timeouts.Add(1)
			}
		}
		return nil
	}))
}
