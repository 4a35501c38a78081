package airline_test

import (
	"context"
	"fmt"
	"log/slog"
	"testing"

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

// The request side of a booking, without the saga engine running:
// createCharge (the provider's authorization and berth's charge record) and
// processBooking's request transaction (booking row, execution, history,
// BookingRequested event). Both report commits and statements per call.

type benchAirline struct {
	cs     *bench.CountingStore
	air    *airline.Service
	flight string
}

func newBenchAirline(b *testing.B, dialect string) *benchAirline {
	b.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	db, err := store.Open(ctx, store.Config{URL: testdb.URL(b, dialect), Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	cs := bench.NewCountingStore(db)
	e := saga.New(saga.Config{Store: cs, Logger: quiet}) // not run: the sagas wait
	bus := saga.NewBus(e)
	notify.Register(e, bus, notify.Config{Store: cs}) // as berth serve: its hook reads the webhooks at every event
	loyalty.Subscribe(bus)
	air := airline.New(airline.Config{Store: cs, Engine: e, Bus: bus, Payments: payment.NewSimulated(cs), Logger: quiet})
	admin := berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "bench-admin", Groups: []string{berth.GroupAdmin}})
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-06-01T08:00:00Z", ArrivalDate: "2027-06-01T10:30:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = 100000, 10000, "EUR"
	if _, err := air.CreateFlight(admin, f); err != nil {
		b.Fatal(err)
	}
	return &benchAirline{cs: cs, air: air, flight: f.ID}
}

func benchCustomerCtx(i int) context.Context {
	return berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: fmt.Sprintf("c%d", i%64),
		Groups: []string{berth.GroupCustomer}})
}

func reportCounts(b *testing.B, c bench.Counts) {
	b.ReportMetric(float64(c.Commits)/float64(b.N), "commits/op")
	b.ReportMetric(float64(c.Statements())/float64(b.N), "stmts/op")
	if b.N >= 100 {
		b.Log(c.Breakdown(b.N))
	}
}

func BenchmarkCreateCharge(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			r := newBenchAirline(b, dialect)
			r.cs.Reset()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.air.Charges().Create(benchCustomerCtx(i), 10000, "EUR", "tok_visa", ""); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCounts(b, r.cs.Counts())
		})
	}
}

func BenchmarkProcessBookingRequest(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			r := newBenchAirline(b, dialect)
			charges := make([]string, b.N)
			for i := range charges {
				ch, err := r.air.Charges().Create(benchCustomerCtx(i), 10000, "EUR", "tok_visa", "")
				if err != nil {
					b.Fatal(err)
				}
				charges[i] = ch.ID
			}
			r.cs.Reset()
			b.ResetTimer()
			for i := range b.N {
				if _, err := r.air.ProcessBooking(benchCustomerCtx(i), airline.BookingRequest{FlightID: r.flight, PaymentToken: charges[i]}); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			reportCounts(b, r.cs.Counts())
		})
	}
}
