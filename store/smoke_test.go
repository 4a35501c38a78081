package store_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/store"
)

func TestSmoke(t *testing.T) {
	ctx := context.Background()
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "b.db")})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	f := &berth.Flight{FlightNumber: 1, DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD", DepartureDate: "2026-12-01T08:00:00Z", ArrivalDate: "2026-12-01T10:00:00Z"}
	f.Capacity, f.Available, f.Price, f.Currency = 2, 2, 100, "EUR"
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	err = db.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) })
	if err != nil {
		t.Fatal(err)
	}
	for i, want := range []string{"", "", berth.ESOLDOUT} {
		err := db.Update(ctx, func(tx berth.Tx) error {
			_, err := tx.Reserve(&berth.Hold{Key: string(rune('a' + i)), ResourceID: f.ID, BookingID: "b", Quantity: 1})
			return err
		})
		if berth.ErrorCode(err) != want {
			t.Fatalf("%d: %v", i, err)
		}
	}
	var fl []*berth.Flight
	db.View(ctx, func(tx berth.Tx) (err error) { fl, err = tx.ListFlights(berth.FlightQuery{DepartureAirportCode: "LGW", Page: berth.Page{Limit: 5}}); return })
	if len(fl) != 1 || fl[0].Available != 0 {
		t.Fatalf("%+v", fl)
	}
}
