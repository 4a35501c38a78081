package store

import (
	"fmt"
	"strings"

	"github.com/berthhq/berth"
)

const flightCols = `r.id, r.kind, r.name, r.capacity, r.available, r.price, r.currency, r.starts_at, r.ends_at, r.owner_id,
r.created_at, r.updated_at, f.flight_number, f.departure_date, f.departure_airport_code, f.departure_airport_name,
f.departure_city, f.departure_locale, f.arrival_date, f.arrival_airport_code, f.arrival_airport_name, f.arrival_city,
f.arrival_locale`

const flightFrom = ` FROM resources r JOIN flights f ON f.resource_id = r.id`

func scanFlight(s scanner) (*berth.Flight, error) {
	var f berth.Flight
	var kind string
	var starts, ends, created, updated int64
	err := s.Scan(&f.ID, &kind, &f.Name, &f.Capacity, &f.Available, &f.Price, &f.Currency, &starts, &ends, &f.OwnerID,
		&created, &updated, &f.FlightNumber, &f.DepartureDate, &f.DepartureAirportCode, &f.DepartureAirportName,
		&f.DepartureCity, &f.DepartureLocale, &f.ArrivalDate, &f.ArrivalAirportCode, &f.ArrivalAirportName, &f.ArrivalCity,
		&f.ArrivalLocale)
	if err != nil {
		return nil, err
	}
	f.Kind = berth.ResourceKind(kind)
	f.StartsAt, f.EndsAt, f.CreatedAt, f.UpdatedAt = fromMicros(starts), fromMicros(ends), fromMicros(created), fromMicros(updated)
	return &f, nil
}

func (t *tx) insertResource(r *berth.Resource) error {
	if r.ID == "" {
		r.ID = berth.NewID()
	}
	r.CreatedAt, r.UpdatedAt = t.now, t.now
	_, err := t.exec(`INSERT INTO resources (id, kind, name, capacity, available, price, currency, starts_at, ends_at, owner_id, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		r.ID, string(r.Kind), r.Name, r.Capacity, r.Available, r.Price, r.Currency, micros(r.StartsAt), micros(r.EndsAt), r.OwnerID,
		micros(r.CreatedAt), micros(r.UpdatedAt))
	return err
}

func (t *tx) CreateFlight(f *berth.Flight) error {
	f.Kind = berth.KindFlight
	if err := t.insertResource(&f.Resource); err != nil {
		return err
	}
	_, err := t.exec(`INSERT INTO flights (resource_id, flight_number, departure_date, departure_airport_code, departure_airport_name,
departure_city, departure_locale, arrival_date, arrival_airport_code, arrival_airport_name, arrival_city, arrival_locale)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		f.ID, f.FlightNumber, f.DepartureDate, f.DepartureAirportCode, f.DepartureAirportName, f.DepartureCity, f.DepartureLocale,
		f.ArrivalDate, f.ArrivalAirportCode, f.ArrivalAirportName, f.ArrivalCity, f.ArrivalLocale)
	return err
}

func (t *tx) UpdateFlight(f *berth.Flight) error {
	// The seat allocation moves the available seats by the same difference,
	// guarded so that no sold seat is un-sold.
	res, err := t.exec(`UPDATE resources SET name = $1, available = available + ($2 - capacity), capacity = $2, price = $3,
currency = $4, starts_at = $5, ends_at = $6, updated_at = $7
WHERE id = $8 AND kind = 'FLIGHT' AND available + ($2 - capacity) >= 0`,
		f.Name, f.Capacity, f.Price, f.Currency, micros(f.StartsAt), micros(f.EndsAt), micros(t.now), f.ID)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		if _, err := t.GetFlight(f.ID); err != nil {
			return err
		}
		return berth.Errorf(berth.EINVALID, "the seat allocation cannot be lower than the seats already sold")
	}
	if _, err := t.exec(`UPDATE flights SET flight_number = $1, departure_date = $2, departure_airport_code = $3, departure_airport_name = $4,
departure_city = $5, departure_locale = $6, arrival_date = $7, arrival_airport_code = $8, arrival_airport_name = $9,
arrival_city = $10, arrival_locale = $11 WHERE resource_id = $12`,
		f.FlightNumber, f.DepartureDate, f.DepartureAirportCode, f.DepartureAirportName, f.DepartureCity, f.DepartureLocale,
		f.ArrivalDate, f.ArrivalAirportCode, f.ArrivalAirportName, f.ArrivalCity, f.ArrivalLocale, f.ID); err != nil {
		return err
	}
	nf, err := t.GetFlight(f.ID)
	if err != nil {
		return err
	}
	*f = *nf
	return nil
}

func (t *tx) DeleteFlight(id string) error {
	var n int
	if err := t.queryRow(`SELECT count(*) FROM bookings WHERE resource_id = $1`, id).Scan(&n); err != nil {
		return err
	}
	if n > 0 {
		return berth.Errorf(berth.ECONFLICT, "the flight has bookings and cannot be deleted")
	}
	if _, err := t.exec(`DELETE FROM holds WHERE resource_id = $1`, id); err != nil {
		return err
	}
	if _, err := t.exec(`DELETE FROM flights WHERE resource_id = $1`, id); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM resources WHERE id = $1 AND kind = 'FLIGHT'`, id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return berth.Errorf(berth.ENOTFOUND, "flight not found")
	}
	return nil
}

func (t *tx) GetFlight(id string) (*berth.Flight, error) {
	f, err := scanFlight(t.queryRow(`SELECT `+flightCols+flightFrom+` WHERE r.id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "flight")
	}
	return f, nil
}

func (t *tx) GetFlights(ids []string) (map[string]*berth.Flight, error) {
	out := make(map[string]*berth.Flight, len(ids))
	if len(ids) == 0 {
		return out, nil
	}
	var a args
	ph := make([]string, len(ids))
	for i, id := range ids {
		ph[i] = a.add(id)
	}
	fs, err := queryAll(t, scanFlight, `SELECT `+flightCols+flightFrom+` WHERE r.id IN (`+strings.Join(ph, ", ")+`)`, a...)
	if err != nil {
		return nil, err
	}
	for _, f := range fs {
		out[f.ID] = f
	}
	return out, nil
}

func (t *tx) ListFlights(q berth.FlightQuery) ([]*berth.Flight, error) {
	var a args
	var where []string
	key := "''"
	if q.DepartureAirportCode != "" {
		key = "f.departure_date"
		where = append(where, "f.departure_airport_code = "+a.add(q.DepartureAirportCode))
		if q.ArrivalAirportCode != "" {
			where = append(where, "f.arrival_airport_code = "+a.add(q.ArrivalAirportCode))
		}
		if q.DepartureFrom != "" {
			where = append(where, "f.departure_date >= "+a.add(q.DepartureFrom))
		}
		if q.DepartureTo != "" {
			where = append(where, "f.departure_date <= "+a.add(q.DepartureTo))
		}
	}
	order := keyset(&a, &where, key, "r.id", q.Page)
	query := `SELECT ` + flightCols + flightFrom + whereClause(where) + order
	return queryAll(t, scanFlight, query, a...)
}

func (t *tx) GetResource(id string) (*berth.Resource, error) {
	var r berth.Resource
	var kind string
	var starts, ends, created, updated int64
	err := t.queryRow(`SELECT id, kind, name, capacity, available, price, currency, starts_at, ends_at, owner_id, created_at, updated_at
FROM resources WHERE id = $1`, id).Scan(&r.ID, &kind, &r.Name, &r.Capacity, &r.Available, &r.Price, &r.Currency, &starts, &ends,
		&r.OwnerID, &created, &updated)
	if err != nil {
		return nil, t.notFound(err, "resource")
	}
	r.Kind = berth.ResourceKind(kind)
	r.StartsAt, r.EndsAt, r.CreatedAt, r.UpdatedAt = fromMicros(starts), fromMicros(ends), fromMicros(created), fromMicros(updated)
	return &r, nil
}

// args collects query arguments and hands out their numbered placeholders.
type args []any

func (a *args) add(v any) string {
	*a = append(*a, v)
	return fmt.Sprintf("$%d", len(*a))
}

func whereClause(conds []string) string {
	if len(conds) == 0 {
		return ""
	}
	return " WHERE " + strings.Join(conds, " AND ")
}

// keyset adds the condition that continues after p.After in (key, id)
// order and returns the ORDER BY … LIMIT clause. key may be a constant
// ("”") for lists ordered by id alone.
func keyset(a *args, where *[]string, key, id string, p berth.Page) string {
	dir, cmp := "ASC", ">"
	if p.Desc {
		dir, cmp = "DESC", "<"
	}
	if p.After != nil {
		if key == "''" {
			*where = append(*where, fmt.Sprintf("%s %s %s", id, cmp, a.add(p.After.ID)))
		} else {
			k, i := a.add(p.After.Key), a.add(p.After.ID)
			*where = append(*where, fmt.Sprintf("(%s %s %s OR (%s = %s AND %s %s %s))", key, cmp, k, key, k, id, cmp, i))
		}
	}
	order := " ORDER BY "
	if key != "''" {
		order += key + " " + dir + ", "
	}
	return order + id + " " + dir + " LIMIT " + a.add(limit(p.Limit))
}
