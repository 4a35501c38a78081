package main

import (
	"context"
	"log/slog"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
)

// demoFlights are the four LGW→MAD flights of the original sample.
var demoFlights = []struct {
	number, seats int
	price         int64
	dep, arr      string
}{
	{1830, 10, 10000, "2027-01-16T08:00+0000", "2027-01-16T10:15+0000"},
	{1813, 2, 20000, "2027-01-16T13:00+0000", "2027-01-16T15:15+0000"},
	{1814, 2, 100000, "2027-01-16T18:00+0000", "2027-01-16T20:15+0000"},
	{1815, 2, 50000, "2027-01-17T08:00+0000", "2027-01-17T10:15+0000"},
}

var demoUsers = []struct{ username, password, group string }{
	{"alice", "alice-password", berth.GroupCustomer},
	{"bob", "bob-password", berth.GroupCustomer},
	{"admin", "admin-password", berth.GroupAdmin},
}

// loadDemo adds the demo flights and users once per database.
func loadDemo(ctx context.Context, s berth.Store, air *airline.Service, log *slog.Logger) error {
	done := false
	if err := s.View(ctx, func(tx berth.Tx) error {
		_, err := tx.GetKV("berth.demo", "loaded")
		done = err == nil
		if berth.ErrorCode(err) == berth.ENOTFOUND {
			return nil
		}
		return err
	}); err != nil || done {
		return err
	}
	accounts := make([]*berth.Account, 0, len(demoUsers))
	for _, u := range demoUsers {
		h, err := auth.HashPassword(u.password, auth.DefaultPasswordParams)
		if err != nil {
			return err
		}
		accounts = append(accounts, &berth.Account{ID: berth.NewID(), Username: u.username, Email: u.username + "@example.com",
			PasswordHash: h, Groups: []string{u.group}, Status: berth.AccountVerified})
	}
	err := s.Update(ctx, func(tx berth.Tx) error {
		// Replicas starting at once on one PostgreSQL database: writing this
		// row first makes every other loader wait for our commit, so the
		// check below sees the marker of whichever loader went first
		// (without it, two loaders both miss it and load twice).
		if err := tx.PutKV("berth.demo", "loading", []byte("1")); err != nil {
			return err
		}
		if _, err := tx.GetKV("berth.demo", "loaded"); err == nil {
			return nil
		}
		for _, a := range accounts {
			if _, err := tx.GetAccountByUsername(a.Username); err == nil {
				continue
			}
			if err := tx.CreateAccount(a); err != nil {
				return err
			}
		}
		for _, d := range demoFlights {
			f := &berth.Flight{FlightNumber: d.number, DepartureDate: d.dep, DepartureAirportCode: "LGW", DepartureAirportName: "London Gatwick",
				DepartureCity: "London", DepartureLocale: "Europe/London", ArrivalDate: d.arr, ArrivalAirportCode: "MAD",
				ArrivalAirportName: "Adolfo Suárez Madrid–Barajas", ArrivalCity: "Madrid", ArrivalLocale: "Europe/Madrid"}
			f.Capacity, f.Available, f.Price, f.Currency = d.seats, d.seats, d.price, "EUR"
			if err := f.Validate(); err != nil {
				return err
			}
			if err := tx.CreateFlight(f); err != nil {
				return err
			}
		}
		return tx.PutKV("berth.demo", "loaded", []byte("1"))
	})
	if err == nil {
		log.Info("demo data loaded", "flights", len(demoFlights), "users", len(demoUsers))
	}
	return err
}
