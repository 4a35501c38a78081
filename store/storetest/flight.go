package storetest

import (
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// newFlight returns a valid flight from to to, departing at departure, with
// seats seats, all for sale.
func newFlight(t *testing.T, number int, from, to, departure string, seats int) *berth.Flight {
	t.Helper()
	dep, err := berth.ParseTime(departure)
	if err != nil {
		t.Fatal(err)
	}
	f := &berth.Flight{
		FlightNumber:         number,
		DepartureDate:        departure,
		DepartureAirportCode: from,
		DepartureAirportName: from + " airport",
		DepartureCity:        from + " city",
		DepartureLocale:      "Europe/London",
		ArrivalDate:          dep.Add(2 * time.Hour).Format(time.RFC3339),
		ArrivalAirportCode:   to,
		ArrivalAirportName:   to + " airport",
		ArrivalCity:          to + " city",
		ArrivalLocale:        "Europe/Madrid",
	}
	f.Capacity, f.Available, f.Price, f.Currency = seats, seats, 12345, "EUR"
	if err := f.Validate(); err != nil {
		t.Fatal(err)
	}
	return f
}

// createFlight stores a new flight with seats seats.
func createFlight(t *testing.T, b *bundle, seats int) *berth.Flight {
	t.Helper()
	f := newFlight(t, 1, "LGW", "MAD", "2026-12-01T08:00:00Z", seats)
	b.update(t, func(tx berth.Tx) error { return tx.CreateFlight(f) })
	return f
}

func getFlight(t *testing.T, b *bundle, id string) *berth.Flight {
	t.Helper()
	return view(t, b, func(tx berth.Tx) (*berth.Flight, error) { return tx.GetFlight(id) })
}

// reserve takes quantity seats of flight under key.
func reserve(t *testing.T, b *bundle, flightID, key string, quantity int) {
	t.Helper()
	taken := write(t, b, func(tx berth.Tx) (bool, error) {
		return tx.Reserve(&berth.Hold{Key: key, ResourceID: flightID, BookingID: "booking-" + key, Quantity: quantity})
	})
	if !taken {
		t.Fatalf("Reserve(%s) did not take seats", key)
	}
}

// checkSeats fails unless the flight has capacity and available seats, and
// checks the store's invariant 0 <= available <= capacity.
func checkSeats(t *testing.T, b *bundle, id string, capacity, available int) {
	t.Helper()
	r := view(t, b, func(tx berth.Tx) (*berth.Resource, error) { return tx.GetResource(id) })
	if r.Capacity != capacity || r.Available != available {
		t.Fatalf("capacity/available = %d/%d, want %d/%d", r.Capacity, r.Available, capacity, available)
	}
	if r.Available < 0 || r.Available > r.Capacity {
		t.Fatalf("invariant broken: available %d, capacity %d", r.Available, r.Capacity)
	}
}

func testFlights(t *testing.T, b *bundle) {
	f := newFlight(t, 101, "LGW", "MAD", "2026-12-01T08:00+0000", 10)
	b.update(t, func(tx berth.Tx) error { return tx.CreateFlight(f) })
	if !berth.IsID(f.ID) || f.Kind != berth.KindFlight {
		t.Fatalf("CreateFlight: id %q kind %q", f.ID, f.Kind)
	}
	if !f.CreatedAt.Equal(Start) || !f.UpdatedAt.Equal(Start) {
		t.Errorf("CreatedAt/UpdatedAt = %v/%v, want the clock's %v", f.CreatedAt, f.UpdatedAt, Start)
	}
	got := getFlight(t, b, f.ID)
	assertEqual(t, got, f)
	if got.DepartureDate != "2026-12-01T08:00+0000" {
		t.Errorf("departure date = %q, want the string as given", got.DepartureDate)
	}

	g := newFlight(t, 102, "MAD", "LGW", "2026-12-02T08:00:00Z", 20)
	b.update(t, func(tx berth.Tx) error { return tx.CreateFlight(g) })

	t.Run("GetFlights", func(t *testing.T) {
		m := view(t, b, func(tx berth.Tx) (map[string]*berth.Flight, error) {
			return tx.GetFlights([]string{f.ID, berth.NewID(), g.ID})
		})
		assertEqual(t, m, map[string]*berth.Flight{f.ID: f, g.ID: g})
		empty := view(t, b, func(tx berth.Tx) (map[string]*berth.Flight, error) { return tx.GetFlights(nil) })
		if empty == nil || len(empty) != 0 {
			t.Errorf("GetFlights(nil) = %v, want an empty map", empty)
		}
	})
	t.Run("GetResource", func(t *testing.T) {
		r := view(t, b, func(tx berth.Tx) (*berth.Resource, error) { return tx.GetResource(f.ID) })
		assertEqual(t, r, &f.Resource)
	})
	t.Run("NotFound", func(t *testing.T) {
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Flight, error) { return tx.GetFlight(berth.NewID()) }), berth.ENOTFOUND, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Resource, error) { return tx.GetResource(berth.NewID()) }), berth.ENOTFOUND, "")
	})
	t.Run("DuplicateID", func(t *testing.T) {
		dup := newFlight(t, 103, "LGW", "BCN", "2026-12-03T08:00:00Z", 5)
		dup.ID = f.ID
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateFlight(dup) }), berth.ECONFLICT, "")
		assertEqual(t, getFlight(t, b, f.ID), f)
	})
}

func testUpdateFlight(t *testing.T, b *bundle) {
	f := createFlight(t, b, 10)
	reserve(t, b, f.ID, "sold", 3)
	checkSeats(t, b, f.ID, 10, 7)

	t.Run("RaiseAllocation", func(t *testing.T) {
		g := getFlight(t, b, f.ID)
		g.Capacity, g.Price, g.DepartureCity, g.FlightNumber = 15, 999, "London", 7
		now := b.clock.Advance(time.Minute)
		b.update(t, func(tx berth.Tx) error { return tx.UpdateFlight(g) })
		if g.Available != 12 || !g.UpdatedAt.Equal(now.Truncate(time.Microsecond)) {
			t.Errorf("after UpdateFlight the argument has available %d, updated %v; want 12, %v", g.Available, g.UpdatedAt, now)
		}
		assertEqual(t, getFlight(t, b, f.ID), g)
		checkSeats(t, b, f.ID, 15, 12)
	})
	t.Run("LowerToSoldSeats", func(t *testing.T) {
		g := getFlight(t, b, f.ID)
		g.Capacity = 3
		b.update(t, func(tx berth.Tx) error { return tx.UpdateFlight(g) })
		checkSeats(t, b, f.ID, 3, 0)
	})
	t.Run("BelowSoldSeats", func(t *testing.T) {
		g := getFlight(t, b, f.ID)
		before := *g
		g.Capacity, g.Price = 2, 1
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateFlight(g) }), berth.EINVALID, "")
		assertEqual(t, getFlight(t, b, f.ID), &before)
	})
	t.Run("ReleaseAfterChange", func(t *testing.T) {
		released := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Release("sold") })
		if !released {
			t.Fatal("Release = false")
		}
		checkSeats(t, b, f.ID, 3, 3)
	})
	t.Run("NotFound", func(t *testing.T) {
		g := newFlight(t, 1, "LGW", "MAD", "2026-12-01T08:00:00Z", 1)
		g.ID = berth.NewID()
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.UpdateFlight(g) }), berth.ENOTFOUND, "")
	})
}

func testDeleteFlight(t *testing.T, b *bundle) {
	t.Run("WithHolds", func(t *testing.T) {
		f := createFlight(t, b, 5)
		reserve(t, b, f.ID, "h-"+f.ID, 2)
		b.update(t, func(tx berth.Tx) error { return tx.DeleteFlight(f.ID) })
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Flight, error) { return tx.GetFlight(f.ID) }), berth.ENOTFOUND, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Resource, error) { return tx.GetResource(f.ID) }), berth.ENOTFOUND, "")
	})
	t.Run("WithBooking", func(t *testing.T) {
		f := createFlight(t, b, 5)
		bk := newBooking(f, "cust")
		b.update(t, func(tx berth.Tx) error { return tx.CreateBooking(bk) })
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.DeleteFlight(f.ID) }), berth.ECONFLICT, "")
		assertEqual(t, getFlight(t, b, f.ID), f)
		// Once the booking is gone the flight can go.
		b.update(t, func(tx berth.Tx) error { return tx.DeleteBooking(bk.ID) })
		b.update(t, func(tx berth.Tx) error { return tx.DeleteFlight(f.ID) })
	})
	t.Run("NotFound", func(t *testing.T) {
		wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.DeleteFlight(berth.NewID()) }), berth.ENOTFOUND, "")
	})
}

func testListFlights(t *testing.T, b *bundle) {
	schedule := []struct{ from, to, dep string }{
		{"LGW", "MAD", "2026-12-05T08:00:00Z"},
		{"LGW", "MAD", "2026-12-03T08:00:00Z"},
		{"MAD", "LGW", "2026-12-02T12:00:00Z"},
		{"LGW", "MAD", "2026-12-04T23:59:00Z"},
		{"LGW", "MAD", "2026-12-03T18:30:00Z"},
		{"LGW", "BCN", "2026-12-03T09:00:00Z"},
		{"LGW", "MAD", "2026-12-03T08:00:00Z"}, // same departure as another: the id breaks the tie
		{"LGW", "MAD", "2026-12-02T08:00:00Z"},
		{"LGW", "MAD", "2026-12-01T08:00:00Z"},
	}
	var all []*berth.Flight
	for i, s := range schedule {
		f := newFlight(t, 200+i, s.from, s.to, s.dep, 10)
		b.update(t, func(tx berth.Tx) error { return tx.CreateFlight(f) })
		all = append(all, f)
	}
	ids := func(fs []*berth.Flight) []string {
		out := make([]string, len(fs))
		for i, f := range fs {
			out[i] = f.ID
		}
		return out
	}
	// want returns the flights that match, in schedule order (or by id).
	want := func(match func(*berth.Flight) bool, bySchedule, desc bool) []string {
		var fs []*berth.Flight
		for _, f := range all {
			if match(f) {
				fs = append(fs, f)
			}
		}
		slices.SortFunc(fs, func(a, b *berth.Flight) int {
			c := 0
			if bySchedule {
				c = strings.Compare(a.DepartureDate, b.DepartureDate)
			}
			if c == 0 {
				c = strings.Compare(a.ID, b.ID)
			}
			if desc {
				c = -c
			}
			return c
		})
		return ids(fs)
	}
	byID := func(f *berth.Flight) berth.Cursor { return berth.Cursor{ID: f.ID} }
	bySchedule := func(f *berth.Flight) berth.Cursor { return berth.Cursor{Key: f.DepartureDate, ID: f.ID} }
	every := func(*berth.Flight) bool { return true }

	for _, tt := range []struct {
		name     string
		q        berth.FlightQuery
		match    func(*berth.Flight) bool
		schedule bool
	}{
		{"ByID", berth.FlightQuery{}, every, false},
		{"FromAirport", berth.FlightQuery{DepartureAirportCode: "LGW"}, func(f *berth.Flight) bool { return f.DepartureAirportCode == "LGW" }, true},
		{"Route", berth.FlightQuery{DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}, func(f *berth.Flight) bool {
			return f.DepartureAirportCode == "LGW" && f.ArrivalAirportCode == "MAD"
		}, true},
		{"RouteAndDates", berth.FlightQuery{DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD", DepartureFrom: "2026-12-02", DepartureTo: "2026-12-04\uffff"},
			func(f *berth.Flight) bool {
				return f.DepartureAirportCode == "LGW" && f.ArrivalAirportCode == "MAD" && f.DepartureDate >= "2026-12-02" && f.DepartureDate < "2026-12-05"
			}, true},
		{"DatePrefix", berth.FlightQuery{DepartureAirportCode: "LGW", DepartureFrom: "2026-12-03", DepartureTo: "2026-12-03\uffff"},
			func(f *berth.Flight) bool {
				return f.DepartureAirportCode == "LGW" && strings.HasPrefix(f.DepartureDate, "2026-12-03")
			}, true},
		{"OpenEnded", berth.FlightQuery{DepartureAirportCode: "LGW", DepartureFrom: "2026-12-04"},
			func(f *berth.Flight) bool { return f.DepartureAirportCode == "LGW" && f.DepartureDate >= "2026-12-04" }, true},
		{"NoMatch", berth.FlightQuery{DepartureAirportCode: "CDG"}, func(*berth.Flight) bool { return false }, true},
	} {
		cursor := byID
		if tt.schedule {
			cursor = bySchedule
		}
		for _, desc := range []bool{false, true} {
			for _, limit := range []int{1, 2, 4, 100} {
				t.Run(fmt.Sprintf("%s/desc=%v/limit=%d", tt.name, desc, limit), func(t *testing.T) {
					got := paginate(t, b, limit, desc, func(tx berth.Tx, p berth.Page) ([]*berth.Flight, error) {
						q := tt.q
						q.Page = p
						return tx.ListFlights(q)
					}, cursor)
					if w := want(tt.match, tt.schedule, desc); !slices.Equal(ids(got), w) {
						t.Fatalf("got %v\nwant %v", ids(got), w)
					}
				})
			}
		}
	}
	t.Run("DefaultLimit", func(t *testing.T) {
		got := view(t, b, func(tx berth.Tx) ([]*berth.Flight, error) { return tx.ListFlights(berth.FlightQuery{}) })
		if len(got) != len(all) {
			t.Fatalf("a zero limit returned %d flights, want all %d", len(got), len(all))
		}
		for _, f := range got {
			assertEqual(t, f, all[slices.IndexFunc(all, func(g *berth.Flight) bool { return g.ID == f.ID })])
		}
	})
}

func testReserve(t *testing.T, b *bundle) {
	f := createFlight(t, b, 5)

	h := &berth.Hold{Key: "k1", ResourceID: f.ID, BookingID: "b1", Quantity: 2}
	if taken := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Reserve(h) }); !taken {
		t.Fatal("first Reserve: taken = false")
	}
	want := &berth.Hold{Key: "k1", ResourceID: f.ID, BookingID: "b1", Quantity: 2, Status: berth.HoldHeld, CreatedAt: Start, UpdatedAt: Start}
	if h.Status != berth.HoldHeld || !h.CreatedAt.Equal(Start) || !h.UpdatedAt.Equal(Start) {
		t.Fatalf("Reserve left the hold %+v", h)
	}
	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Hold, error) { return tx.GetHold("k1") }), want)
	checkSeats(t, b, f.ID, 5, 3)

	t.Run("SameKeyIsIdempotent", func(t *testing.T) {
		b.clock.Advance(time.Second)
		// Even with other values, the existing hold is returned unchanged.
		again := &berth.Hold{Key: "k1", ResourceID: f.ID, BookingID: "other", Quantity: 1}
		if taken := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Reserve(again) }); taken {
			t.Fatal("second Reserve with the same key: taken = true")
		}
		assertEqual(t, again, want)
		checkSeats(t, b, f.ID, 5, 3)
	})
	t.Run("SoldOutWritesNothing", func(t *testing.T) {
		err := b.updateErr(func(tx berth.Tx) error {
			_, err := tx.Reserve(&berth.Hold{Key: "k2", ResourceID: f.ID, BookingID: "b2", Quantity: 4})
			return err
		})
		wantCode(t, err, berth.ESOLDOUT, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Hold, error) { return tx.GetHold("k2") }), berth.ENOTFOUND, "")
		checkSeats(t, b, f.ID, 5, 3)
	})
	t.Run("SoldOutRollsBackTheTransaction", func(t *testing.T) {
		// A hold taken earlier in a transaction that then sells out is
		// given back with the rest of the transaction.
		err := b.updateErr(func(tx berth.Tx) error {
			if _, err := tx.Reserve(&berth.Hold{Key: "k3", ResourceID: f.ID, BookingID: "b3", Quantity: 1}); err != nil {
				return err
			}
			_, err := tx.Reserve(&berth.Hold{Key: "k4", ResourceID: f.ID, BookingID: "b3", Quantity: 3})
			return err
		})
		wantCode(t, err, berth.ESOLDOUT, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Hold, error) { return tx.GetHold("k3") }), berth.ENOTFOUND, "")
		checkSeats(t, b, f.ID, 5, 3)
	})
	t.Run("Invalid", func(t *testing.T) {
		for _, q := range []int{0, -1} {
			err := b.updateErr(func(tx berth.Tx) error {
				_, err := tx.Reserve(&berth.Hold{Key: "bad", ResourceID: f.ID, BookingID: "b", Quantity: q})
				return err
			})
			wantCode(t, err, berth.EINVALID, "")
		}
	})
	t.Run("UnknownResource", func(t *testing.T) {
		err := b.updateErr(func(tx berth.Tx) error {
			_, err := tx.Reserve(&berth.Hold{Key: "nowhere", ResourceID: berth.NewID(), BookingID: "b", Quantity: 1})
			return err
		})
		wantCode(t, err, berth.ENOTFOUND, "")
	})
	t.Run("LastSeats", func(t *testing.T) {
		reserve(t, b, f.ID, "k5", 3)
		checkSeats(t, b, f.ID, 5, 0)
		err := b.updateErr(func(tx berth.Tx) error {
			_, err := tx.Reserve(&berth.Hold{Key: "k6", ResourceID: f.ID, BookingID: "b", Quantity: 1})
			return err
		})
		wantCode(t, err, berth.ESOLDOUT, "")
	})
	t.Run("GetHoldNotFound", func(t *testing.T) {
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Hold, error) { return tx.GetHold("missing") }), berth.ENOTFOUND, "")
	})
}

func testRelease(t *testing.T, b *bundle) {
	f := createFlight(t, b, 4)
	reserve(t, b, f.ID, "r1", 3)
	checkSeats(t, b, f.ID, 4, 1)

	now := b.clock.Advance(time.Minute)
	if released := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Release("r1") }); !released {
		t.Fatal("first Release = false")
	}
	checkSeats(t, b, f.ID, 4, 4)
	h := view(t, b, func(tx berth.Tx) (*berth.Hold, error) { return tx.GetHold("r1") })
	assertEqual(t, h, &berth.Hold{Key: "r1", ResourceID: f.ID, BookingID: "booking-r1", Quantity: 3, Status: berth.HoldReleased, CreatedAt: Start, UpdatedAt: now})

	if released := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Release("r1") }); released {
		t.Fatal("second Release = true")
	}
	checkSeats(t, b, f.ID, 4, 4)
	if released := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Release("unknown") }); released {
		t.Fatal("Release of an unknown key = true")
	}

	// A released key stays used: reserving under it again takes nothing.
	again := &berth.Hold{Key: "r1", ResourceID: f.ID, BookingID: "booking-r1", Quantity: 1}
	if taken := write(t, b, func(tx berth.Tx) (bool, error) { return tx.Reserve(again) }); taken || again.Status != berth.HoldReleased {
		t.Fatalf("Reserve under a released key: taken %v, status %s", taken, again.Status)
	}
	checkSeats(t, b, f.ID, 4, 4)
}

// testReserveRace releases 50 buyers at once on a flight with 10 seats:
// exactly 10 get a seat, whatever the interleaving.
func testReserveRace(t *testing.T, b *bundle) {
	const seats, buyers = 10, 50
	f := createFlight(t, b, seats)

	start := make(chan struct{})
	errs := make([]error, buyers)
	var wg sync.WaitGroup
	for i := range buyers {
		wg.Go(func() {
			<-start
			errs[i] = b.updateErr(func(tx berth.Tx) error {
				taken, err := tx.Reserve(&berth.Hold{Key: fmt.Sprintf("race-%d", i), ResourceID: f.ID, BookingID: fmt.Sprintf("b-%d", i), Quantity: 1})
				if err == nil && !taken {
					return fmt.Errorf("a new key was not taken")
				}
				return err
			})
		})
	}
	close(start)
	wg.Wait()

	won, soldOut := 0, 0
	for i, err := range errs {
		switch berth.ErrorCode(err) {
		case "":
			won++
		case berth.ESOLDOUT:
			soldOut++
		default:
			t.Errorf("buyer %d: %v", i, err)
		}
	}
	if won != seats || soldOut != buyers-seats {
		t.Fatalf("%d got a seat and %d were sold out; want %d and %d", won, soldOut, seats, buyers-seats)
	}
	checkSeats(t, b, f.ID, seats, 0)
	held := 0
	for i := range buyers {
		var h *berth.Hold
		err := b.store.View(b.ctx, func(tx berth.Tx) (err error) { h, err = tx.GetHold(fmt.Sprintf("race-%d", i)); return err })
		switch {
		case err == nil && h.Status == berth.HoldHeld && h.Quantity == 1:
			held++
			if errs[i] != nil {
				t.Errorf("buyer %d failed but has a hold", i)
			}
		case berth.ErrorCode(err) == berth.ENOTFOUND:
			if errs[i] == nil {
				t.Errorf("buyer %d succeeded but has no hold", i)
			}
		default:
			t.Errorf("hold of buyer %d: %+v, %v", i, h, err)
		}
	}
	if held != seats {
		t.Fatalf("%d HELD holds, want %d", held, seats)
	}
}

// testReleaseRace gives the same hold back from 10 goroutines at once:
// exactly one of them releases it.
func testReleaseRace(t *testing.T, b *bundle) {
	const releasers = 10
	f := createFlight(t, b, 3)
	reserve(t, b, f.ID, "shared", 2)

	start := make(chan struct{})
	results := make([]bool, releasers)
	errs := make([]error, releasers)
	var wg sync.WaitGroup
	for i := range releasers {
		wg.Go(func() {
			<-start
			errs[i] = b.updateErr(func(tx berth.Tx) (err error) { results[i], err = tx.Release("shared"); return err })
		})
	}
	close(start)
	wg.Wait()
	n := 0
	for i := range releasers {
		if errs[i] != nil {
			t.Errorf("releaser %d: %v", i, errs[i])
		}
		if results[i] {
			n++
		}
	}
	if n != 1 {
		t.Fatalf("%d releases returned true, want exactly 1", n)
	}
	checkSeats(t, b, f.ID, 3, 3)
}
