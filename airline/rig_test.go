package airline_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/store/storetest"
)

// rig is one berth process in a test, rebuilt after every crash, over a
// real database: the saga engine (driven with Tick on a fake clock), the
// event bus with loyalty, and the airline service. Faults are injected in
// the database (fs wraps it) and at the payment provider (prov wraps the
// simulated provider, whose ledger lives in the real database and is not
// affected by berth's database faults: it is the outside world).
type rig struct {
	t      failer
	ctx    context.Context
	db     *store.DB
	fs     *faults.Store
	sim    *payment.Simulated
	prov   *faults.Provider
	clock  *storetest.Clock
	retry  saga.RetryPolicy
	hold   time.Duration
	engine *saga.Engine
	svc    *airline.Service
	admin  context.Context
	boots  int
	// restartByLease: after a crash, the next process waits for the
	// leases to expire (PostgreSQL replicas) instead of releasing them at
	// start (an SQLite server that owns its data directory).
	restartByLease bool
}

var quiet = slog.New(slog.DiscardHandler)

// failer is what a rig reports failures to: a *testing.T, or a *rapid.T
// inside a property (so that rapid can shrink the failing case).
type failer interface {
	Helper()
	Fatal(args ...any)
	Fatalf(format string, args ...any)
}

// sqliteTemplate creates a migrated, empty SQLite file in t's temporary
// directory: copying it is much faster than migrating a new database for
// every case (especially under the race detector).
func sqliteTemplate(t testing.TB) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), "template.db")
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + path, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	return path
}

// newRig opens a store at url on a fake clock. A url ending in
// "template.db" names a file from sqliteTemplate: the rig gets a copy.
func newRig(t testing.TB, url string, retry saga.RetryPolicy) *rig {
	t.Helper()
	ctx := context.Background()
	if strings.HasSuffix(url, "template.db") {
		b, err := os.ReadFile(url)
		if err != nil {
			t.Fatal(err)
		}
		url = filepath.Join(t.TempDir(), "x.db")
		if err := os.WriteFile(url, b, 0o600); err != nil {
			t.Fatal(err)
		}
		url = "sqlite:" + url
	}
	if url == "" {
		url = "sqlite:" + t.TempDir() + "/x.db"
	}
	clock := storetest.NewClock(time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC))
	db, err := store.Open(ctx, store.Config{URL: url, Clock: clock, Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return newRigOn(t, db, clock, retry)
}

// newRigOn builds a rig on an open store.
func newRigOn(t testing.TB, db *store.DB, clock *storetest.Clock, retry saga.RetryPolicy) *rig {
	r := &rig{t: t, ctx: context.Background(), db: db, fs: faults.NewStore(db), sim: payment.NewSimulated(db), clock: clock,
		retry: retry, hold: 15 * time.Minute,
		admin: berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: "root", Groups: []string{"Admin"}})}
	r.prov = faults.NewProvider(r.sim)
	r.boot()
	return r
}

// boot starts a process: a new engine (a new lease owner), bus and service.
func (r *rig) boot() {
	r.boots++
	r.engine = saga.New(saga.Config{Store: r.fs, Clock: r.clock, Logger: quiet, Owner: fmt.Sprintf("process-%d", r.boots)})
	bus := saga.NewBus(r.engine)
	loyalty.Subscribe(bus)
	r.svc = airline.New(airline.Config{Store: r.fs, Engine: r.engine, Bus: bus, Payments: r.prov, Logger: quiet,
		HoldTime: r.hold, CancelWait: time.Millisecond, StepRetry: r.retry})
}

// restart replaces a crashed process with a new one on the same database.
func (r *rig) restart() {
	r.t.Helper()
	r.fs.Restart()
	r.boot()
	if !r.restartByLease {
		// What `berth serve` does on SQLite (saga.Config.Exclusive).
		if err := r.db.Update(r.ctx, func(tx berth.Tx) error { _, err := tx.ReleaseLeases(); return err }); err != nil {
			r.t.Fatal(err)
		}
	}
}

// drive runs the engine until nothing is left to do (or until, if not
// zero), restarting the process whenever an injected crash kills it.
func (r *rig) drive(until time.Time) {
	r.t.Helper()
	for range 100 {
		_, err := faults.Drive(r.ctx, r.engine, r.db, r.clock, until)
		if err == nil {
			return
		}
		if !r.fs.Crashed() {
			r.t.Fatalf("driving the engine: %v", err)
		}
		r.restart()
	}
	r.t.Fatal("the process keeps crashing")
}

func customer(name string) context.Context {
	return berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: name, Groups: []string{"customer"}})
}

// flight creates a flight with capacity seats at price EUR cents.
func (r *rig) flight(number, capacity int, price int64) *berth.Flight {
	r.t.Helper()
	f := &berth.Flight{FlightNumber: number, DepartureDate: "2027-01-01T08:00:00Z", ArrivalDate: "2027-01-01T10:00:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = capacity, price, "EUR"
	f, err := r.svc.CreateFlight(r.admin, f)
	if err != nil {
		r.t.Fatal(err)
	}
	return f
}

// book authorizes the flight's price on card and starts processBooking
// with an idempotency key (so that the request can be replayed).
func (r *rig) book(who context.Context, f *berth.Flight, card, key string) (*berth.Booking, error) {
	ch, err := r.svc.Charges().Create(who, f.Price, f.Currency, card, "charge-"+key)
	if err != nil {
		return nil, err
	}
	return r.svc.ProcessBooking(who, airline.BookingRequest{FlightID: f.ID, PaymentToken: ch.ID, IdempotencyKey: key})
}

// check runs the invariants checker on the real database.
func (r *rig) check(o faults.Options) *faults.Report {
	r.t.Helper()
	rep, err := faults.Check(r.ctx, r.db, o)
	if err != nil {
		r.t.Fatal(err)
	}
	return rep
}

// heal ends every injected fault and the simulated provider's card faults.
func (r *rig) heal() {
	r.t.Helper()
	r.fs.Clear()
	r.prov.Clear()
	if _, err := faults.HealAll(r.ctx, r.db); err != nil {
		r.t.Fatal(err)
	}
}

// settle heals everything and redrives the dead-letter queue until every
// execution has ended; it returns how many redrives it took.
func (r *rig) settle() int {
	r.t.Helper()
	r.heal()
	total := 0
	for range 10 {
		r.drive(time.Time{})
		n, err := faults.RedriveAll(r.ctx, r.db)
		if err != nil {
			r.t.Fatal(err)
		}
		if n == 0 {
			return total
		}
		total += n
	}
	r.t.Fatal("executions keep dying after heal and redrive")
	return total
}

// replay checks that replaying requests, redriving finished executions and
// redelivering every event has no second effect.
func (r *rig) replay(o faults.Options, requests map[string]replayable) {
	r.t.Helper()
	before := r.check(o)
	for key, req := range requests {
		ch, err := r.svc.Charges().Create(req.who, req.price, "EUR", req.card, "charge-"+key)
		if err != nil {
			r.t.Fatalf("replaying createCharge %s: %v", key, err)
		}
		b, err := r.svc.ProcessBooking(req.who, airline.BookingRequest{FlightID: req.flight, PaymentToken: ch.ID, IdempotencyKey: key})
		if err != nil || b.ID != req.booking {
			r.t.Fatalf("replaying processBooking %s: %v, booking %v, want %s", key, err, b, req.booking)
		}
		if _, err := saga.Redrive(r.ctx, r.db, b.ExecutionID); berth.ErrorCode(err) != berth.ECONFLICT {
			r.t.Fatalf("redriving the finished execution of %s: %v, want CONFLICT", b.ID, err)
		}
	}
	if _, err := faults.Redeliver(r.ctx, r.db, ""); err != nil {
		r.t.Fatal(err)
	}
	r.drive(time.Time{})
	after := r.check(o)
	if d := faults.EffectsDiff(before, after); len(d) > 0 {
		r.t.Fatalf("replays had a second effect:\n  %s", strings.Join(d, "\n  "))
	}
}

// replayable is a booking request that can be sent again.
type replayable struct {
	who     context.Context
	flight  string
	card    string
	price   int64
	booking string
}
