package berth

import (
	"strings"
	"time"
)

// ResourceKind is what a resource is. The set is closed.
type ResourceKind string

const (
	KindFlight   ResourceKind = "FLIGHT"
	KindShowtime ResourceKind = "SHOWTIME"
	KindItem     ResourceKind = "ITEM"
	KindJob      ResourceKind = "JOB"
)

// Resource is anything with limited capacity that can be booked. Available is
// only ever changed by one guarded statement inside the transaction that
// records why (see Tx.Reserve and Tx.Release); 0 <= Available <= Capacity.
type Resource struct {
	ID        string
	Kind      ResourceKind
	Name      string
	Capacity  int
	Available int
	Price     int64  // per unit, in minor units of Currency
	Currency  string // ISO 4217, upper case
	StartsAt  time.Time
	EndsAt    time.Time
	OwnerID   string // the subject that owns the resource (a job's parent); "" for house resources
	CreatedAt time.Time
	UpdatedAt time.Time
}

// Flight is an airline resource. Capacity is the deprecated seatAllocation,
// Available the seatCapacity (seats still for sale), Price the ticketPrice.
// Dates are kept as the ISO-8601 strings they were given in, so that
// prefix filters ("2021-04-10T10") keep working.
type Flight struct {
	Resource
	FlightNumber         int
	DepartureDate        string
	DepartureAirportCode string
	DepartureAirportName string
	DepartureCity        string
	DepartureLocale      string
	ArrivalDate          string
	ArrivalAirportCode   string
	ArrivalAirportName   string
	ArrivalCity          string
	ArrivalLocale        string
}

// Validate checks a flight before it is created or updated.
func (f *Flight) Validate() error {
	switch {
	case f.FlightNumber <= 0:
		return Errorf(EINVALID, "flightNumber must be a positive integer")
	case !isAirportCode(f.DepartureAirportCode):
		return Errorf(EINVALID, "departureAirportCode must be a 3-letter IATA code")
	case !isAirportCode(f.ArrivalAirportCode):
		return Errorf(EINVALID, "arrivalAirportCode must be a 3-letter IATA code")
	case f.DepartureAirportCode == f.ArrivalAirportCode:
		return Errorf(EINVALID, "departure and arrival airports must differ")
	case f.Capacity < 0 || f.Capacity > 100000:
		return Errorf(EINVALID, "seat allocation must be between 0 and 100000")
	case f.Available < 0 || f.Available > f.Capacity:
		return Errorf(EINVALID, "seatCapacity must be between 0 and the seat allocation")
	case f.Price < 0 || f.Price > 100_000_000_00:
		return Errorf(EINVALID, "ticketPrice must be between 0 and 10000000000 minor units")
	case !IsCurrency(f.Currency):
		return Errorf(EINVALID, "ticketCurrency must be a 3-letter ISO 4217 code")
	}
	dep, err := ParseTime(f.DepartureDate)
	if err != nil {
		return Errorf(EINVALID, "departureDate: %s", ErrorMessage(err))
	}
	arr, err := ParseTime(f.ArrivalDate)
	if err != nil {
		return Errorf(EINVALID, "arrivalDate: %s", ErrorMessage(err))
	}
	if !arr.After(dep) {
		return Errorf(EINVALID, "arrivalDate must be after departureDate")
	}
	f.StartsAt, f.EndsAt = dep, arr
	f.Kind = KindFlight
	if f.Name == "" {
		f.Name = f.DepartureAirportCode + "-" + f.ArrivalAirportCode
	}
	for _, s := range []*string{&f.DepartureAirportName, &f.DepartureCity, &f.DepartureLocale, &f.ArrivalAirportName, &f.ArrivalCity, &f.ArrivalLocale} {
		if len(*s) > 200 {
			return Errorf(EINVALID, "airport names, cities and locales are limited to 200 characters")
		}
	}
	return nil
}

func isAirportCode(s string) bool {
	if len(s) != 3 {
		return false
	}
	for _, r := range s {
		if r < 'A' || r > 'Z' {
			return false
		}
	}
	return true
}

// IsCurrency reports whether s looks like an ISO 4217 code (three upper-case letters).
func IsCurrency(s string) bool { return isAirportCode(s) }

// timeLayouts are the ISO-8601 forms berth accepts for dates it is given.
var timeLayouts = []string{
	time.RFC3339Nano,
	"2006-01-02T15:04:05Z0700",
	"2006-01-02T15:04Z07:00",
	"2006-01-02T15:04Z0700",
	"2006-01-02T15:04:05",
	"2006-01-02T15:04",
	"2006-01-02",
}

// ParseTime parses an ISO-8601 date or date-time as the originals wrote them
// ("2020-01-23T08:00+0000", RFC 3339, or a bare date, taken as UTC).
func ParseTime(s string) (time.Time, error) {
	s = strings.TrimSpace(s)
	for _, l := range timeLayouts {
		if t, err := time.Parse(l, s); err == nil {
			return t.UTC(), nil
		}
	}
	return time.Time{}, Errorf(EINVALID, "%q is not an ISO-8601 date-time (e.g. 2026-12-01T08:00:00Z)", truncate(s, 40))
}

func truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[:n] + "…"
}

// HoldStatus is the state of a capacity hold.
type HoldStatus string

const (
	HoldHeld     HoldStatus = "HELD"
	HoldReleased HoldStatus = "RELEASED"
)

// Hold records that Quantity units of a resource were taken, and by whom.
// Its Key is chosen by the taker (a saga execution uses its id and step), so
// taking is idempotent and only the taker can give the units back.
type Hold struct {
	Key        string
	ResourceID string
	BookingID  string
	Quantity   int
	Status     HoldStatus
	CreatedAt  time.Time
	UpdatedAt  time.Time
}
