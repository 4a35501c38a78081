package airline_test

import (
	"context"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// TestProviderOutage runs a real engine (real time, 16 workers) while the
// payment provider is down. Bookings wait in retry; when the outage
// outlasts the hold time they are compensated (TIMEOUT) and their
// authorizations voided once the provider is back; when it is shorter they
// complete. Throughout, reads stay fast, the calls in flight at the
// provider never exceed the workers and goroutines do not pile up. (Not
// parallel: it counts the process's goroutines.)
func TestProviderOutage(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "x.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	prov := faults.NewProvider(payment.NewSimulated(db))
	const workers = 16
	n, hold := 30, 3*time.Second
	if raceEnabled { // the race detector slows SQLite about tenfold
		n, hold = 10, 6*time.Second
	}
	engine := saga.New(saga.Config{Store: db, Workers: workers, Poll: 20 * time.Millisecond, Logger: quiet})
	bus := saga.NewBus(engine)
	loyalty.Subscribe(bus)
	// A retry budget longer than the hold: bookings wait for the provider
	// until the hold time, not until their attempts run out.
	svc := airline.New(airline.Config{Store: db, Engine: engine, Bus: bus, Payments: prov, Logger: quiet, HoldTime: hold,
		StepRetry: saga.RetryPolicy{MaxAttempts: 200, Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond}})
	admin := berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "root", Groups: []string{"Admin"}})
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-01-01T08:00:00Z", ArrivalDate: "2027-01-01T10:00:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = 200, 1000, "EUR"
	if f, err = svc.CreateFlight(admin, f); err != nil {
		t.Fatal(err)
	}
	runCtx, stop := context.WithCancel(ctx)
	done := make(chan struct{})
	go func() { _ = engine.Run(runCtx); close(done) }()
	defer func() { stop(); <-done }()
	base := runtime.NumGoroutine()

	book := func(round string) []*berth.Booking {
		// Authorize first (createCharge answers UNAVAILABLE while the
		// provider is down), then book during the outage.
		var chs []*berth.Charge
		for i := range n {
			ch, err := svc.Charges().Create(customer("c"+round), f.Price, "EUR", payment.TokenVisa, round+string(rune('a'+i)))
			if err != nil {
				t.Fatal(err)
			}
			chs = append(chs, ch)
		}
		prov.SetDown(true)
		var out []*berth.Booking
		for _, ch := range chs {
			b, err := svc.ProcessBooking(customer("c"+round), airline.BookingRequest{FlightID: f.ID, PaymentToken: ch.ID})
			if err != nil {
				t.Fatal(err)
			}
			out = append(out, b)
		}
		return out
	}
	// watch samples goroutines and read latency until the returned func is called.
	watch := func() func() (int, time.Duration) {
		var maxG atomic.Int64
		var mu sync.Mutex
		var lat []time.Duration
		quit := make(chan struct{})
		var wg sync.WaitGroup
		wg.Go(func() {
			for {
				select {
				case <-quit:
					return
				case <-time.After(20 * time.Millisecond):
				}
				start := time.Now()
				if _, _, err := svc.ListFlights(customer("reader"), nil, airline.PageRequest{}); err != nil {
					t.Error(err)
				}
				mu.Lock()
				lat = append(lat, time.Since(start))
				mu.Unlock()
				if g := int64(runtime.NumGoroutine()); g > maxG.Load() {
					maxG.Store(g)
				}
			}
		})
		return func() (int, time.Duration) {
			close(quit)
			wg.Wait()
			slices.Sort(lat)
			return int(maxG.Load()), lat[len(lat)*99/100]
		}
	}
	settle := func() {
		deadline := time.Now().Add(60 * time.Second)
		for {
			var running int
			_ = db.View(ctx, func(tx berth.Tx) (err error) { running, err = tx.CountExecutions(berth.ExecutionRunning); return err })
			if running == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d executions still running", running)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	outcomes := func(bs []*berth.Booking) map[string]int {
		out := map[string]int{}
		_ = db.View(ctx, func(tx berth.Tx) error {
			for _, b := range bs {
				x, err := tx.GetExecution(b.ExecutionID)
				if err != nil {
					return err
				}
				bk, _ := tx.GetBooking(b.ID)
				ch, _ := tx.GetCharge(b.PaymentToken)
				code, _, _ := strings.Cut(x.Error, ":")
				out[string(x.Status)+" "+code+" "+string(bk.Status)+" "+string(ch.Status)]++
			}
			return nil
		})
		return out
	}

	// An outage longer than the hold: every booking is compensated.
	started := time.Now()
	w := watch()
	long := book("long")
	time.Sleep(hold + time.Second)
	prov.SetDown(false)
	settle()
	maxG, p99 := w()
	got := outcomes(long)
	t.Logf("outage of %s (hold %s): %v in %s; provider calls in flight ≤ %d, goroutines %d → at most %d, ListFlights p99 %s",
		hold+time.Second, hold, got, time.Since(started).Round(time.Millisecond), prov.MaxInFlight(), base, maxG, p99.Round(time.Millisecond))
	if got["FAILED TIMEOUT CANCELLED VOIDED"] != n {
		t.Errorf("after an outage past the hold: %v", got)
	}
	if prov.MaxInFlight() > workers || maxG > base+workers+40 {
		t.Errorf("piled up: %d provider calls at once, %d goroutines (from %d)", prov.MaxInFlight(), maxG, base)
	}
	if p99 > time.Second {
		t.Errorf("reads slowed down: ListFlights p99 %s", p99)
	}

	// A short outage: every booking completes when the provider is back.
	started = time.Now()
	w = watch()
	short := book("short")
	time.Sleep(time.Second)
	prov.SetDown(false)
	settle()
	maxG, p99 = w()
	got = outcomes(short)
	t.Logf("outage of 1s (hold %s): %v in %s; goroutines at most %d, ListFlights p99 %s", hold, got,
		time.Since(started).Round(time.Millisecond), maxG, p99.Round(time.Millisecond))
	if got["SUCCEEDED  CONFIRMED CAPTURED"] != n {
		t.Errorf("after a short outage: %v", got)
	}
	rep, err := faults.Check(ctx, db, faults.Options{Quiescent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil || len(rep.Dead) > 0 {
		t.Fatalf("%v, dead %v", err, rep.Dead)
	}
}
