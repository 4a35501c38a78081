package airline_test

import (
	"context"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// lossy is a payment provider whose first capture succeeds at the
// simulated provider but reports a failure: the reply was lost.
type lossy struct {
	*payment.Simulated
	lost bool
}

func (l *lossy) Capture(ctx context.Context, key, ref string, amount int64) error {
	err := l.Simulated.Capture(ctx, key, ref, amount)
	if err == nil && !l.lost {
		l.lost = true
		return berth.Errorf(berth.EUNAVAILABLE, "connection reset")
	}
	return err
}

type bundle struct {
	svc    *airline.Service
	db     *store.DB
	engine *saga.Engine
	clock  *clock
	flight *berth.Flight
	alice  context.Context
	admin  context.Context
}

func setup(t *testing.T, provider func(*payment.Simulated) payment.Provider) *bundle {
	t.Helper()
	ctx := context.Background()
	c := &clock{now: time.Date(2026, 11, 22, 12, 0, 0, 0, time.UTC)}
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "a.db"), Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	e := saga.New(saga.Config{Store: db, Clock: c})
	bus := saga.NewBus(e)
	loyalty.Subscribe(bus)
	sim := payment.NewSimulated(db)
	var p payment.Provider = sim
	if provider != nil {
		p = provider(sim)
	}
	svc := airline.New(airline.Config{Store: db, Engine: e, Bus: bus, Payments: p,
		StepRetry: saga.RetryPolicy{MaxAttempts: 3, Initial: time.Second, Jitter: -1}})
	b := &bundle{svc: svc, db: db, engine: e, clock: c,
		alice: berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "alice", Groups: []string{"customer"}}),
		admin: berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "root", Groups: []string{"Admin"}})}
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-01-01T08:00:00Z", ArrivalDate: "2027-01-01T10:00:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = 3, 10000, "EUR"
	if b.flight, err = svc.CreateFlight(b.admin, f); err != nil {
		t.Fatal(err)
	}
	return b
}

func (b *bundle) book(t *testing.T, card string) *berth.Booking {
	t.Helper()
	ch, err := b.svc.Charges().Create(b.alice, 10000, "EUR", card, "")
	if err != nil {
		t.Fatal(err)
	}
	bk, err := b.svc.ProcessBooking(b.alice, airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: ch.ID})
	if err != nil {
		t.Fatal(err)
	}
	return bk
}

func (b *bundle) state(t *testing.T, id string) (*berth.Booking, *berth.Charge, *berth.Flight) {
	t.Helper()
	var bk *berth.Booking
	var ch *berth.Charge
	var f *berth.Flight
	err := b.db.View(context.Background(), func(tx berth.Tx) (err error) {
		if bk, err = tx.GetBooking(id); err != nil {
			return err
		}
		if ch, err = tx.GetCharge(bk.PaymentToken); err != nil {
			return err
		}
		f, err = tx.GetFlight(bk.ResourceID)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return bk, ch, f
}

func TestHoldExpiry(t *testing.T) {
	t.Parallel()
	// The provider goes down: Collect Payment keeps retrying until the hold
	// time passes, then the booking is compensated and cancelled.
	var sim *payment.Simulated
	b := setup(t, func(s *payment.Simulated) payment.Provider { sim = s; return s })
	bk := b.book(t, payment.TokenVisa)
	sim.FailureRate = 1
	ctx := context.Background()
	tick := func() {
		if _, err := b.engine.Tick(ctx); err != nil {
			t.Fatal(err)
		}
	}
	tick()
	if got, _, f := b.state(t, bk.ID); got.Status != berth.BookingUnconfirmed || f.Available != 2 {
		t.Fatalf("during the outage: %s, %d seats", got.Status, f.Available)
	}
	b.clock.Advance(16 * time.Minute)
	tick()
	var x *berth.Execution
	_ = b.db.View(ctx, func(tx berth.Tx) (err error) { x, err = tx.GetExecution(bk.ExecutionID); return err })
	if x.Phase != berth.PhaseCompensating || x.Status != berth.ExecutionRunning || len(x.Error) < 7 || x.Error[:7] != "TIMEOUT" {
		t.Fatalf("after the hold time: %s %s %q", x.Status, x.Phase, x.Error)
	}
	sim.FailureRate = 0 // the provider is back: the compensation completes
	b.clock.Advance(time.Minute)
	tick()
	got, ch, f := b.state(t, bk.ID)
	if got.Status != berth.BookingCancelled || ch.Status != berth.ChargeVoided || f.Available != 3 {
		t.Fatalf("after compensation: booking %s, charge %s, %d seats", got.Status, ch.Status, f.Available)
	}
}

func TestCaptureReplyLost(t *testing.T) {
	t.Parallel()
	// The capture succeeds at the provider but its reply is lost; the retry
	// sees it captured (same idempotency key) and the booking confirms with
	// exactly one capture.
	b := setup(t, func(s *payment.Simulated) payment.Provider { return &lossy{Simulated: s} })
	bk := b.book(t, payment.TokenVisa)
	ctx := context.Background()
	for range 5 {
		if _, err := b.engine.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		b.clock.Advance(2 * time.Second)
	}
	got, ch, f := b.state(t, bk.ID)
	if got.Status != berth.BookingConfirmed || ch.Status != berth.ChargeCaptured || ch.Captured != 10000 || f.Available != 2 {
		t.Fatalf("booking %s, charge %s captured %d, %d seats", got.Status, ch.Status, ch.Captured, f.Available)
	}
	c, r, _ := payment.Ledger(ctx, b.db, []string{ch.ProviderRef})
	if c != 10000 || r != 0 {
		t.Fatalf("provider captured %d refunded %d", c, r)
	}
	if l, _ := b.svc.Loyalty(b.alice, ""); l.Points != 10000 || l.Level != berth.LevelBronze || l.RemainingPoints != 40000 {
		t.Fatalf("loyalty %+v", l)
	}
}

func TestValidationWritesNothing(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	ctx := b.alice
	ch, err := b.svc.Charges().Create(ctx, 5000, "EUR", payment.TokenVisa, "")
	if err != nil {
		t.Fatal(err)
	}
	usd, _ := b.svc.Charges().Create(ctx, 20000, "USD", payment.TokenVisa, "")
	bob := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: "bob"})
	key := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorAPIKey, Subject: "apikey:x"})
	tests := []struct {
		name string
		ctx  context.Context
		req  airline.BookingRequest
		code string
	}{
		{"anonymous", context.Background(), airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: ch.ID}, berth.EUNAUTHENTICATED},
		{"api key", key, airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: ch.ID}, berth.EFORBIDDEN},
		{"bad flight id", ctx, airline.BookingRequest{FlightID: "x'; DROP TABLE bookings;--", PaymentToken: ch.ID}, berth.EINVALID},
		{"unknown flight", ctx, airline.BookingRequest{FlightID: berth.NewID(), PaymentToken: ch.ID}, berth.ENOTFOUND},
		{"no token", ctx, airline.BookingRequest{FlightID: b.flight.ID}, berth.EINVALID},
		{"someone else's charge", bob, airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: ch.ID}, berth.EINVALID},
		{"too little authorized", ctx, airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: ch.ID}, berth.EPAYMENTDECLINED},
		{"wrong currency", ctx, airline.BookingRequest{FlightID: b.flight.ID, PaymentToken: usd.ID}, berth.EINVALID},
	}
	for _, tt := range tests {
		if _, err := b.svc.ProcessBooking(tt.ctx, tt.req); berth.ErrorCode(err) != tt.code {
			t.Errorf("%s: %v, want %s", tt.name, err, tt.code)
		}
	}
	var n int
	_ = b.db.View(context.Background(), func(tx berth.Tx) (err error) { n, err = tx.CountExecutions(berth.ExecutionRunning); return err })
	bks, _, _ := b.svc.ListBookings(b.admin, nil, airline.PageRequest{})
	if n != 0 || len(bks) != 0 {
		t.Fatalf("refused requests left %d executions and %d bookings", n, len(bks))
	}
}

func TestFilterAndPagination(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for i := 2; i <= 12; i++ {
		f := &berth.Flight{FlightNumber: i, DepartureDate: "2027-01-02T08:00:00Z", ArrivalDate: "2027-01-02T10:00:00Z",
			DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
		f.Capacity, f.Price, f.Currency = i, int64(i*100), "EUR"
		if i%2 == 0 {
			f.DepartureAirportCode = "LHR"
		}
		if _, err := b.svc.CreateFlight(b.admin, f); err != nil {
			t.Fatal(err)
		}
	}
	gt := int64(5)
	filter := &airline.Filter{Fields: map[string]*airline.Cond{"seatCapacity": {Gt: gt}},
		Or: []*airline.Filter{{Fields: map[string]*airline.Cond{"departureAirportCode": {Eq: "LHR"}}}}}
	seen := map[int]bool{}
	limit := 2
	var next *string
	for pages := 0; ; pages++ {
		fs, tok, err := b.svc.ListFlights(b.alice, filter, airline.PageRequest{Limit: &limit, NextToken: next})
		if err != nil {
			t.Fatal(err)
		}
		for _, f := range fs {
			if seen[f.FlightNumber] {
				t.Fatalf("flight %d twice", f.FlightNumber)
			}
			seen[f.FlightNumber] = true
		}
		if tok == nil {
			break
		}
		next = tok
		if pages > 10 {
			t.Fatal("pagination does not end")
		}
	}
	// seats > 5 and from LHR: 6, 8, 10, 12
	if len(seen) != 4 || !seen[6] || !seen[12] {
		t.Fatalf("matched %v", seen)
	}
	bad := "!!"
	if _, _, err := b.svc.ListFlights(b.alice, nil, airline.PageRequest{NextToken: &bad}); berth.ErrorCode(err) != berth.EINVALID {
		t.Fatalf("bad token: %v", err)
	}
	zero := 0
	if _, _, err := b.svc.ListFlights(b.alice, nil, airline.PageRequest{Limit: &zero}); berth.ErrorCode(err) != berth.EINVALID {
		t.Fatalf("limit 0: %v", err)
	}
	if _, _, err := b.svc.ListFlights(b.alice, &airline.Filter{Fields: map[string]*airline.Cond{"password": {}}}, airline.PageRequest{}); berth.ErrorCode(err) != berth.EINVALID {
		t.Fatalf("unknown field: %v", err)
	}
	fs, _, err := b.svc.GetFlightBySchedule(b.alice, "LGW", "beginsWith", []airline.KeyCond{{ArrivalAirportCode: "MAD", DepartureDate: "2027-01-02"}}, nil, airline.PageRequest{})
	if err != nil || len(fs) != 5 {
		t.Fatalf("schedule: %d flights, %v", len(fs), err)
	}
}
