package store

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
)

// BenchmarkPostgresReserve measures the critical section of a booking on
// PostgreSQL: one transaction with Tx.Reserve (the guarded decrement of the
// resource row plus the hold row), run by 64 goroutines at once, either all
// on one resource (every transaction waits for the row lock of the one
// before it: the hot-resource limit) or spread over 64 resources.
//
//	BERTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -run '^$' -bench PostgresReserve -benchtime 5s ./store/
func BenchmarkPostgresReserve(b *testing.B) {
	for _, resources := range []int{1, 64} {
		b.Run(fmt.Sprintf("resources=%d", resources), func(b *testing.B) {
			ctx := context.Background()
			db, err := Open(ctx, Config{URL: testdb.URL(b, "postgres"), MaxConns: 16, Logger: slog.New(slog.DiscardHandler)})
			if err != nil {
				b.Fatal(err)
			}
			defer db.Close()
			ids := make([]string, resources)
			err = db.Update(ctx, func(tx berth.Tx) error {
				for i := range ids {
					f := &berth.Flight{FlightNumber: 100 + i, DepartureDate: "2027-01-16T08:00+0000", DepartureAirportCode: "LGW",
						DepartureAirportName: "London Gatwick", DepartureCity: "London", DepartureLocale: "Europe/London",
						ArrivalDate: "2027-01-16T10:15+0000", ArrivalAirportCode: "MAD", ArrivalAirportName: "Madrid",
						ArrivalCity: "Madrid", ArrivalLocale: "Europe/Madrid"}
					f.Capacity, f.Available, f.Price, f.Currency = 1<<30, 1<<30, 100, "EUR"
					if err := tx.CreateFlight(f); err != nil {
						return err
					}
					ids[i] = f.ID
				}
				return nil
			})
			if err != nil {
				b.Fatal(err)
			}
			var n atomic.Int64
			b.SetParallelism(32) // × GOMAXPROCS (2 here) = 64 goroutines
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					i := n.Add(1)
					err := db.Update(ctx, func(tx berth.Tx) error {
						_, err := tx.Reserve(&berth.Hold{Key: fmt.Sprintf("bench-%d", i), ResourceID: ids[int(i)%len(ids)], BookingID: "b", Quantity: 1})
						return err
					})
					if err != nil {
						b.Error(err)
						return
					}
				}
			})
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}
