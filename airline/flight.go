package airline

import (
	"context"

	"github.com/berthhq/berth"
)

// FlightFields are the fields a flight filter may name.
var FlightFields = map[string]bool{"id": true, "departureDate": true, "departureAirportCode": true, "departureAirportName": true,
	"departureCity": true, "departureLocale": true, "arrivalDate": true, "arrivalAirportCode": true, "arrivalAirportName": true,
	"arrivalCity": true, "arrivalLocale": true, "ticketPrice": true, "ticketCurrency": true, "flightNumber": true,
	"seatAllocation": true, "seatCapacity": true}

func flightField(f *berth.Flight) func(string) any {
	return func(name string) any {
		switch name {
		case "id":
			return f.ID
		case "departureDate":
			return f.DepartureDate
		case "departureAirportCode":
			return f.DepartureAirportCode
		case "departureAirportName":
			return f.DepartureAirportName
		case "departureCity":
			return f.DepartureCity
		case "departureLocale":
			return f.DepartureLocale
		case "arrivalDate":
			return f.ArrivalDate
		case "arrivalAirportCode":
			return f.ArrivalAirportCode
		case "arrivalAirportName":
			return f.ArrivalAirportName
		case "arrivalCity":
			return f.ArrivalCity
		case "arrivalLocale":
			return f.ArrivalLocale
		case "ticketPrice":
			return f.Price
		case "ticketCurrency":
			return f.Currency
		case "flightNumber":
			return int64(f.FlightNumber)
		case "seatAllocation":
			return int64(f.Capacity)
		case "seatCapacity":
			return int64(f.Available)
		}
		return nil
	}
}

// CreateFlight adds a flight (Admin only). Available seats start at
// f.Available (seatCapacity), or at the allocation when that is zero.
func (s *Service) CreateFlight(ctx context.Context, f *berth.Flight) (*berth.Flight, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	if f.Capacity == 0 {
		f.Capacity = f.Available
	}
	if f.Available == 0 && f.Capacity > 0 {
		f.Available = f.Capacity
	}
	if err := f.Validate(); err != nil {
		return nil, err
	}
	if f.ID != "" && !berth.IsID(f.ID) {
		return nil, berth.Errorf(berth.EINVALID, "id must be a UUID; leave it out to have one assigned")
	}
	if err := s.cfg.Store.Update(ctx, func(tx berth.Tx) error { return tx.CreateFlight(f) }); err != nil {
		return nil, err
	}
	return f, nil
}

// FlightPatch is updateFlight's input: nil fields are left as they are.
type FlightPatch struct {
	DepartureDate, DepartureAirportCode, DepartureAirportName, DepartureCity, DepartureLocale *string
	ArrivalDate, ArrivalAirportCode, ArrivalAirportName, ArrivalCity, ArrivalLocale           *string
	TicketPrice                                                                               *int64
	TicketCurrency                                                                            *string
	FlightNumber, SeatAllocation                                                              *int
}

// UpdateFlight changes a flight (Admin only). Seats for sale cannot be set
// directly: changing seatAllocation moves them by the same difference.
func (s *Service) UpdateFlight(ctx context.Context, id string, p FlightPatch) (*berth.Flight, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var f *berth.Flight
	err := s.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
		if f, err = tx.GetFlight(id); err != nil {
			return err
		}
		set := func(dst *string, v *string) {
			if v != nil {
				*dst = *v
			}
		}
		set(&f.DepartureDate, p.DepartureDate)
		set(&f.DepartureAirportCode, p.DepartureAirportCode)
		set(&f.DepartureAirportName, p.DepartureAirportName)
		set(&f.DepartureCity, p.DepartureCity)
		set(&f.DepartureLocale, p.DepartureLocale)
		set(&f.ArrivalDate, p.ArrivalDate)
		set(&f.ArrivalAirportCode, p.ArrivalAirportCode)
		set(&f.ArrivalAirportName, p.ArrivalAirportName)
		set(&f.ArrivalCity, p.ArrivalCity)
		set(&f.ArrivalLocale, p.ArrivalLocale)
		set(&f.Currency, p.TicketCurrency)
		if p.TicketPrice != nil {
			f.Price = *p.TicketPrice
		}
		if p.FlightNumber != nil {
			f.FlightNumber = *p.FlightNumber
		}
		sold := f.Capacity - f.Available
		if p.SeatAllocation != nil {
			f.Capacity = *p.SeatAllocation
			if f.Capacity < sold {
				return berth.Errorf(berth.EINVALID, "the seat allocation cannot be lower than the %d seats already sold", sold)
			}
			f.Available = f.Capacity - sold
		}
		if err := f.Validate(); err != nil {
			return err
		}
		return tx.UpdateFlight(f)
	})
	if err != nil {
		return nil, err
	}
	return f, nil
}

// DeleteFlight removes a flight without bookings (Admin only).
func (s *Service) DeleteFlight(ctx context.Context, id string) (*berth.Flight, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var f *berth.Flight
	err := s.cfg.Store.Update(ctx, func(tx berth.Tx) (err error) {
		if f, err = tx.GetFlight(id); err != nil {
			return err
		}
		return tx.DeleteFlight(id)
	})
	return f, err
}

// GetFlight returns a flight to a signed-in user or an API key.
func (s *Service) GetFlight(ctx context.Context, id string) (*berth.Flight, error) {
	if _, err := berth.RequireReader(ctx); err != nil {
		return nil, err
	}
	var f *berth.Flight
	err := s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) { f, err = tx.GetFlight(id); return err })
	return f, err
}

// GetFlights returns flights by id for batch loading (no access check:
// callers have already authorized the parent object).
func (s *Service) GetFlights(ctx context.Context, ids []string) (map[string]*berth.Flight, error) {
	var m map[string]*berth.Flight
	err := s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) { m, err = tx.GetFlights(ids); return err })
	return m, err
}

// ListFlights lists flights in id order, filtered.
func (s *Service) ListFlights(ctx context.Context, filter *Filter, p PageRequest) ([]*berth.Flight, *string, error) {
	return s.listFlights(ctx, berth.FlightQuery{}, filter, p)
}

// KeyCond is one bound of getFlightBySchedule's composite sort key.
type KeyCond struct {
	ArrivalAirportCode string
	DepartureDate      string
}

// GetFlightBySchedule lists the flights leaving departureAirportCode,
// ordered by departure date, selected by a condition on the composite key
// (arrivalAirportCode, departureDate) as the original index did: op is
// eq, le, lt, ge, gt, beginsWith or between (two values).
func (s *Service) GetFlightBySchedule(ctx context.Context, departureAirportCode, op string, keys []KeyCond, filter *Filter, p PageRequest) ([]*berth.Flight, *string, error) {
	if departureAirportCode == "" || len(departureAirportCode) > 3 {
		return nil, nil, berth.Errorf(berth.EINVALID, "departureAirportCode must be a 3-letter IATA code")
	}
	q := berth.FlightQuery{DepartureAirportCode: departureAirportCode}
	extra := map[string]*Cond{}
	if op != "" {
		if len(keys) == 0 || (op == "between" && len(keys) != 2) {
			return nil, nil, berth.Errorf(berth.EINVALID, "arrivalAirportCodeDepartureDate.%s needs %s", op, map[bool]string{true: "two values", false: "a value"}[op == "between"])
		}
		k := keys[0]
		if k.ArrivalAirportCode != "" {
			q.ArrivalAirportCode = k.ArrivalAirportCode
		}
		d := k.DepartureDate
		switch op {
		case "eq":
			q.DepartureFrom, q.DepartureTo = d, d
			if d == "" {
				q.DepartureFrom, q.DepartureTo = "", ""
			}
		case "beginsWith":
			if d != "" {
				q.DepartureFrom, q.DepartureTo = d, d+"\uffff"
			}
		case "ge":
			q.DepartureFrom = d
		case "gt":
			// strictly after: filter out equality after the range read (a
			// bound ending in a NUL byte is refused by PostgreSQL)
			q.DepartureFrom = d
			extra["departureDate"] = &Cond{Ne: d}
		case "le":
			q.DepartureTo = d
		case "lt":
			q.DepartureTo = d
			extra["departureDate"] = &Cond{Ne: d}
		case "between":
			q.DepartureFrom, q.DepartureTo = d, keys[1].DepartureDate
			if keys[1].ArrivalAirportCode != k.ArrivalAirportCode {
				q.ArrivalAirportCode = "" // a range across arrival airports: filter instead
				extra["arrivalAirportCode"] = &Cond{Between: []any{k.ArrivalAirportCode, keys[1].ArrivalAirportCode}}
			}
		default:
			return nil, nil, berth.Errorf(berth.EINVALID, "unknown key condition %q", op)
		}
		if op != "eq" && op != "beginsWith" && op != "between" && q.ArrivalAirportCode != "" {
			// Range operators on a composite key compare the arrival
			// airport first; keep exact semantics for the common case of a
			// fixed arrival airport.
			extra["arrivalAirportCode"] = &Cond{Eq: q.ArrivalAirportCode}
		}
	}
	if len(extra) > 0 {
		filter = &Filter{Fields: extra, And: []*Filter{filter}}
	}
	return s.listFlights(ctx, q, filter, p)
}

func (s *Service) listFlights(ctx context.Context, q berth.FlightQuery, filter *Filter, p PageRequest) ([]*berth.Flight, *string, error) {
	if _, err := berth.RequireReader(ctx); err != nil {
		return nil, nil, err
	}
	if err := filter.Validate(FlightFields); err != nil {
		return nil, nil, err
	}
	page, err := p.parse()
	if err != nil {
		return nil, nil, err
	}
	var out []*berth.Flight
	var next *berth.Cursor
	err = s.cfg.Store.View(ctx, func(tx berth.Tx) (err error) {
		out, next, err = scan(page, func(pg berth.Page) ([]*berth.Flight, error) {
			q.Page = pg
			return tx.ListFlights(q)
		}, func(f *berth.Flight) berth.Cursor {
			if q.DepartureAirportCode != "" {
				return berth.Cursor{Key: f.DepartureDate, ID: f.ID}
			}
			return berth.Cursor{ID: f.ID}
		}, func(f *berth.Flight) bool { return filter.Match(flightField(f)) })
		return err
	})
	return out, EncodeToken(next), err
}
