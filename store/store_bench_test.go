package store_test

import (
	"context"
	"fmt"
	"log/slog"
	"sync/atomic"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/store"
)

// The store's hot paths: the guarded Reserve transaction (the one that
// takes a seat), alone and raced by many goroutines on one flight, and the
// fixed cost of a read-write and a read-only transaction. SQLite runs with
// berth's settings (WAL, synchronous=FULL, one writer); PostgreSQL when
// BERTH_TEST_DATABASE_URL is set.

var benchQuiet = slog.New(slog.DiscardHandler)

func benchStore(b *testing.B, dialect string, seats int) (*store.DB, string) {
	b.Helper()
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: testdb.URL(b, dialect), Logger: benchQuiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-06-01T08:00:00Z", ArrivalDate: "2027-06-01T10:30:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Kind, f.Name, f.Capacity, f.Available, f.Price, f.Currency = berth.KindFlight, "LGW-MAD", seats, seats, 10000, "EUR"
	if err := db.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) }); err != nil {
		b.Fatal(err)
	}
	return db, f.ID
}

// BenchmarkReserve commits one guarded Reserve (hold lookup, guarded
// UPDATE, hold INSERT) per transaction, from one goroutine.
func BenchmarkReserve(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db, flight := benchStore(b, dialect, b.N)
			ctx := context.Background()
			b.ResetTimer()
			for i := range b.N {
				key := fmt.Sprintf("bench-%d:seat", i)
				err := db.Update(ctx, func(tx berth.Tx) error {
					_, err := tx.Reserve(&berth.Hold{Key: key, ResourceID: flight, BookingID: key, Quantity: 1})
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
			b.ReportMetric(float64(b.N)/b.Elapsed().Seconds(), "tx/s")
		})
	}
}

// BenchmarkReserveContended races 64 goroutines (on 2 CPUs: parallelism
// 32) for the seats of one flight: the flash sale's critical section.
func BenchmarkReserveContended(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db, flight := benchStore(b, dialect, b.N)
			ctx := context.Background()
			var seq atomic.Int64
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					key := fmt.Sprintf("bench-%d:seat", seq.Add(1))
					err := db.Update(ctx, func(tx berth.Tx) error {
						_, err := tx.Reserve(&berth.Hold{Key: key, ResourceID: flight, BookingID: key, Quantity: 1})
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

// BenchmarkUpdateNoWrite is the fixed cost of a read-write transaction that
// writes nothing (BEGIN IMMEDIATE … COMMIT on SQLite: no fsync).
func BenchmarkUpdateNoWrite(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db, _ := benchStore(b, dialect, 1)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := db.Update(ctx, func(tx berth.Tx) error { return nil }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkViewGetFlight is a read-only transaction reading one flight (as
// getFlight and every saga step's lookups do).
func BenchmarkViewGetFlight(b *testing.B) {
	for _, dialect := range testdb.Dialects() {
		b.Run(dialect, func(b *testing.B) {
			db, flight := benchStore(b, dialect, 1)
			ctx := context.Background()
			b.ResetTimer()
			for range b.N {
				if err := db.View(ctx, func(tx berth.Tx) error { _, err := tx.GetFlight(flight); return err }); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
