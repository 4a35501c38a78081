package saga_test

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/bench"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/notify"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// The saga engine's benchmarks: processBooking sagas through the real
// airline service and the simulated payment provider, wired as `berth
// serve` wires them (notifications, loyalty), on SQLite (synchronous=FULL)
// and, with BERTH_TEST_DATABASE_URL, PostgreSQL. They report sagas/s and,
// from a counting store, commits, read-only transactions and SQL statements
// per saga. BERTH_BENCH_SYNCHRONOUS=NORMAL runs SQLite without an fsync per
// commit, to separate the fsyncs' cost from the rest; BERTH_BENCH_WORKERS
// sets the engine's workers (default 64, as berth serve).
//
//	go test -run '^$' -bench . -benchtime 2000x ./saga/

var benchLog = slog.New(slog.DiscardHandler)

// benchWorkers is BERTH_BENCH_WORKERS, or 0 for the engine's default.
func benchWorkers() int { n, _ := strconv.Atoi(os.Getenv("BERTH_BENCH_WORKERS")); return n }

// benchRig is berth's booking stack on a fresh database.
type benchRig struct {
	db     *store.DB
	cs     *bench.CountingStore
	engine *saga.Engine
	air    *airline.Service
	flight string
	admin  context.Context
}

func newBenchRig(b *testing.B, dialect string, seats int) *benchRig {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: testdb.URL(b, dialect), Logger: benchLog, Synchronous: os.Getenv("BERTH_BENCH_SYNCHRONOUS")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cs := bench.NewCountingStore(db)
	e := saga.New(saga.Config{Store: cs, Logger: benchLog, Workers: benchWorkers()}) // 64 workers, as berth serve
	bus := saga.NewBus(e)
	notify.Register(e, bus, notify.Config{Store: cs})
	loyalty.Subscribe(bus)
	air := airline.New(airline.Config{Store: cs, Engine: e, Bus: bus, Payments: payment.NewSimulated(cs), Logger: benchLog})
	r := &benchRig{db: db, cs: cs, engine: e, air: air,
		admin: berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "bench-admin", Groups: []string{berth.GroupAdmin}})}
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-06-01T08:00:00Z", ArrivalDate: "2027-06-01T10:30:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = max(seats, 1), 10000, "EUR"
	if _, err := air.CreateFlight(r.admin, f); err != nil {
		b.Fatal(err)
	}
	r.flight = f.ID
	return r
}

func benchCustomer(i int) context.Context {
	return berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: fmt.Sprintf("c%d", i%64),
		Groups: []string{berth.GroupCustomer}})
}

// charges authorizes n payments of 64 customers (createCharge).
func (r *benchRig) charges(b *testing.B, n int) []string {
	b.Helper()
	out := make([]string, n)
	var wg sync.WaitGroup
	errs := make(chan error, 8)
	for w := range 8 {
		wg.Go(func() {
			for i := w; i < n; i += 8 {
				ch, err := r.air.Charges().Create(benchCustomer(i), 10000, "EUR", "tok_visa", "")
				if err != nil {
					errs <- err
					return
				}
				out[i] = ch.ID
			}
		})
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		b.Fatal(err)
	}
	return out
}

// book sends processBooking for every charge from 64 goroutines.
func (r *benchRig) book(b *testing.B, charges []string) {
	var wg sync.WaitGroup
	next := make(chan int)
	go func() {
		for i := range charges {
			next <- i
		}
		close(next)
	}()
	for range 64 {
		wg.Go(func() {
			for i := range next {
				if _, err := r.air.ProcessBooking(benchCustomer(i), airline.BookingRequest{FlightID: r.flight, PaymentToken: charges[i]}); err != nil {
					b.Error(err)
				}
			}
		})
	}
	wg.Wait()
}

// drain waits until no execution (saga or job) is running.
func (r *benchRig) drain(b *testing.B) {
	for {
		var n int
		if err := r.db.View(context.Background(), func(tx berth.Tx) (err error) { n, err = tx.CountExecutions(berth.ExecutionRunning); return err }); err != nil {
			b.Fatal(err)
		}
		if n == 0 {
			return
		}
		time.Sleep(5 * time.Millisecond) // polling more often takes CPU from the engine
	}
}

// check fails b unless every saga succeeded.
func (r *benchRig) check(b *testing.B, n int) {
	for _, st := range []berth.ExecutionStatus{berth.ExecutionFailed, berth.ExecutionDead} {
		var k int
		_ = r.db.View(context.Background(), func(tx berth.Tx) (err error) { k, err = tx.CountExecutions(st); return err })
		if k > 0 {
			b.Fatalf("%d executions %s", k, st)
		}
	}
	var f *berth.Flight
	_ = r.db.View(context.Background(), func(tx berth.Tx) (err error) { f, err = tx.GetFlight(r.flight); return err })
	if f.Capacity-f.Available != n {
		b.Fatalf("%d seats taken by %d sagas", f.Capacity-f.Available, n)
	}
}

func benchReport(b *testing.B, n int, elapsed time.Duration, c bench.Counts) {
	b.ReportMetric(float64(n)/elapsed.Seconds(), "sagas/s")
	b.ReportMetric(float64(c.Commits)/float64(n), "commits/saga")
	b.ReportMetric(float64(c.Views)/float64(n), "views/saga")
	b.ReportMetric(float64(c.Statements())/float64(n), "stmts/saga")
	if n >= 100 {
		b.Log(c.Breakdown(n))
	}
}

// BenchmarkProcessBooking runs b.N processBooking sagas on one flight with
// enough seats for all, with the engine as berth serve configures it.
//
//   - requests+engine: 64 goroutines call airline.Service.ProcessBooking
//     (the request transaction) while engine.Run runs the sagas; timed
//     until every saga and event job ended.
//   - backlog: the b.N requests are committed first, untimed; engine.Run
//     then drains them: the engine alone.
//
// The payments (createCharge) are made before the timer in both.
func BenchmarkProcessBooking(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect+"/requests+engine", func(b *testing.B) {
			r := newBenchRig(b, dialect, b.N)
			charges := r.charges(b, b.N)
			r.cs.Reset()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- r.engine.Run(ctx) }()
			r.book(b, charges)
			r.drain(b)
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			benchReport(b, b.N, elapsed, r.cs.Counts())
			r.check(b, b.N)
		})
		b.Run(dialect+"/backlog", func(b *testing.B) {
			r := newBenchRig(b, dialect, b.N)
			charges := r.charges(b, b.N)
			r.book(b, charges)
			r.cs.Reset()
			ctx, cancel := context.WithCancel(context.Background())
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- r.engine.Run(ctx) }()
			r.drain(b)
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			benchReport(b, b.N, elapsed, r.cs.Counts())
			r.check(b, b.N)
		})
	}
}

// benchNoop is the state of BenchmarkEngineNoop's saga.
type benchNoop struct{ N int }

// BenchmarkEngineNoop drains b.N executions of a five-step saga whose steps
// do nothing: the engine's own cost per saga (claims, one commit per step
// with its history, the finish), without the airline's work.
func BenchmarkEngineNoop(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			ctx := context.Background()
			db, err := store.Open(ctx, store.Config{URL: testdb.URL(b, dialect), Logger: benchLog, Synchronous: os.Getenv("BERTH_BENCH_SYNCHRONOUS")})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			cs := bench.NewCountingStore(db)
			e := saga.New(saga.Config{Store: cs, Logger: benchLog})
			step := func(name string) saga.Step[benchNoop] {
				return saga.Step[benchNoop]{Action: saga.Action[benchNoop]{Name: name, Tx: func(ctx context.Context, tx berth.Tx, r *saga.Run[benchNoop]) error {
					r.State.N++
					return nil
				}}}
			}
			def := &saga.Definition[benchNoop]{Name: "benchNoop", Steps: []saga.Step[benchNoop]{step("a"), step("b"), step("c"), step("d"), step("e")}}
			saga.MustRegister(e, def)
			for i := 0; i < b.N; i += 500 {
				if err := db.Update(ctx, func(tx berth.Tx) error {
					for j := i; j < min(i+500, b.N); j++ {
						if _, err := def.Start(tx, benchNoop{}, saga.StartOptions{}); err != nil {
							return err
						}
					}
					return nil
				}); err != nil {
					b.Fatal(err)
				}
			}
			rctx, cancel := context.WithCancel(ctx)
			done := make(chan error, 1)
			b.ResetTimer()
			start := time.Now()
			go func() { done <- e.Run(rctx) }()
			r := &benchRig{db: db}
			r.drain(b)
			elapsed := time.Since(start)
			b.StopTimer()
			cancel()
			<-done
			benchReport(b, b.N, elapsed, cs.Counts())
		})
	}
}
