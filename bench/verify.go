package bench

import (
	"context"
	"database/sql"
	"fmt"
	"strings"
	"time"
)

// DBCheck is what berth's database says after the run: the seat and money
// invariants over the benchmark's flights, charges and bookings, the
// server-side time to CONFIRMED, and how many rows a booking wrote.
type DBCheck struct {
	Dialect string `json:"dialect"`
	// Seats, summed over the benchmark's flights.
	Capacity  int64 `json:"capacity"`
	Available int64 `json:"available"`
	HeldSeats int64 `json:"held_seats"` // holds still HELD
	// Bookings by status.
	Confirmed   int `json:"confirmed"`
	Cancelled   int `json:"cancelled"`
	Unconfirmed int `json:"unconfirmed"`
	// Oversold sums, per flight, confirmed bookings beyond its capacity.
	Oversold int  `json:"oversold"`
	SeatsOK  bool `json:"seats_ok"`
	// Money of the benchmark's customers, in minor units.
	Captured       int64          `json:"captured"`
	Refunded       int64          `json:"refunded"`
	ConfirmedPrice int64          `json:"confirmed_price"`
	Charges        map[string]int `json:"charges_by_status"`
	MoneyOK        bool           `json:"money_ok"`
	// Executions of processBooking by status, and of every definition.
	Executions map[string]int `json:"executions"`
	// ServerConfirm is CONFIRMED's commit time (the booking's updated_at)
	// minus the request's (created_at): exact, without polling.
	ServerConfirm Summary `json:"server_time_to_confirmed_ms"`
	// ServerConfirmedPerSec is confirmed bookings over the time from the
	// first booking request to the last confirmation, by the database's
	// timestamps.
	ServerConfirmedPerSec float64 `json:"server_confirmed_per_sec"`
	// Rows in the whole database per accepted booking (exact on the fresh
	// database of an embedded run).
	HistoryPerBooking    float64  `json:"history_rows_per_booking"`
	EventsPerBooking     float64  `json:"events_per_booking"`
	ExecutionsPerBooking float64  `json:"executions_per_booking"`
	Problems             []string `json:"problems,omitempty"`
}

// openDB opens dbURL for reading (SQLite read-only, beside a running
// server if need be: WAL allows it).
func openDB(dbURL string) (*sql.DB, string, error) {
	switch {
	case strings.HasPrefix(dbURL, "postgres://"), strings.HasPrefix(dbURL, "postgresql://"):
		db, err := sql.Open("pgx", dbURL)
		return db, "postgres", err
	case strings.HasPrefix(dbURL, "sqlite:"), strings.HasSuffix(dbURL, ".db"):
		path := strings.TrimPrefix(strings.TrimPrefix(dbURL, "sqlite:"), "//")
		if i := strings.IndexByte(path, '?'); i >= 0 {
			path = path[:i]
		}
		db, err := sql.Open("sqlite", SQLiteDSN(path, "FULL", true))
		return db, "sqlite", err
	}
	return nil, "", fmt.Errorf("bench: unknown database URL %q", dbURL)
}

// pgCommits returns the committed transactions of the current PostgreSQL
// database so far (pg_stat_database.xact_commit).
func pgCommits(ctx context.Context, dbURL string) (int64, error) {
	db, _, err := openDB(dbURL)
	if err != nil {
		return 0, err
	}
	defer db.Close()
	var n int64
	err = db.QueryRowContext(ctx, `SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n)
	return n, err
}

func placeholders(from, n int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = fmt.Sprintf("$%d", from+i)
	}
	return strings.Join(p, ", ")
}

// checkDB verifies the invariants for the flights and the customers whose
// subjects start with prefix.
func checkDB(ctx context.Context, dbURL string, flights []string, prefix string) (*DBCheck, error) {
	db, dialect, err := openDB(dbURL)
	if err != nil {
		return nil, err
	}
	defer db.Close()
	c := &DBCheck{Dialect: dialect, Charges: map[string]int{}, Executions: map[string]int{}, SeatsOK: true, MoneyOK: true}
	args := make([]any, len(flights))
	for i, f := range flights {
		args[i] = f
	}
	in := placeholders(1, len(flights))

	// Seats, per flight.
	rows, err := db.QueryContext(ctx, `SELECT r.id, r.capacity, r.available,
(SELECT CAST(COALESCE(sum(h.quantity), 0) AS BIGINT) FROM holds h WHERE h.resource_id = r.id AND h.status = 'HELD'),
(SELECT count(*) FROM bookings b WHERE b.resource_id = r.id AND b.status = 'CONFIRMED')
FROM resources r WHERE r.id IN (`+in+`)`, args...)
	if err != nil {
		return nil, fmt.Errorf("bench: check seats: %w", err)
	}
	seen := 0
	for rows.Next() {
		var id string
		var capacity, available, held, confirmed int64
		if err := rows.Scan(&id, &capacity, &available, &held, &confirmed); err != nil {
			rows.Close()
			return nil, err
		}
		seen++
		c.Capacity += capacity
		c.Available += available
		c.HeldSeats += held
		if confirmed > capacity {
			c.Oversold += int(confirmed - capacity)
		}
		if available < 0 || capacity-available != held || held != confirmed {
			c.SeatsOK = false
			c.Problems = append(c.Problems, fmt.Sprintf("flight %s: capacity %d, available %d, held seats %d, confirmed bookings %d",
				id, capacity, available, held, confirmed))
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if seen != len(flights) {
		c.SeatsOK = false
		c.Problems = append(c.Problems, fmt.Sprintf("found %d of the %d flights", seen, len(flights)))
	}

	// Bookings by status, the confirmed ones' price and timing.
	rows, err = db.QueryContext(ctx, `SELECT status, count(*), CAST(COALESCE(sum(price), 0) AS BIGINT) FROM bookings WHERE resource_id IN (`+in+`) GROUP BY status`, args...)
	if err != nil {
		return nil, fmt.Errorf("bench: check bookings: %w", err)
	}
	for rows.Next() {
		var status string
		var n int
		var sum int64
		if err := rows.Scan(&status, &n, &sum); err != nil {
			rows.Close()
			return nil, err
		}
		switch status {
		case "CONFIRMED":
			c.Confirmed, c.ConfirmedPrice = n, sum
		case "CANCELLED", "EXPIRED":
			c.Cancelled += n
		default:
			c.Unconfirmed += n
		}
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, err
	}
	if c.Unconfirmed > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d bookings still UNCONFIRMED", c.Unconfirmed))
	}
	var lats []time.Duration
	var first, last int64
	if err := db.QueryRowContext(ctx, `SELECT COALESCE(min(created_at), 0) FROM bookings WHERE resource_id IN (`+in+`)`, args...).Scan(&first); err != nil {
		return nil, err
	}
	rows, err = db.QueryContext(ctx, `SELECT created_at, updated_at FROM bookings WHERE resource_id IN (`+in+`) AND status = 'CONFIRMED'`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var created, updated int64
		if err := rows.Scan(&created, &updated); err != nil {
			rows.Close()
			return nil, err
		}
		lats = append(lats, time.Duration(updated-created)*time.Microsecond)
		last = max(last, updated)
	}
	rows.Close()
	c.ServerConfirm = Summarize(lats)
	if last > first {
		c.ServerConfirmedPerSec = rate(len(lats), time.Duration(last-first)*time.Microsecond)
	}

	// Money: what the customers paid for is what they got.
	rows, err = db.QueryContext(ctx, `SELECT status, count(*), CAST(COALESCE(sum(captured), 0) AS BIGINT), CAST(COALESCE(sum(refunded), 0) AS BIGINT) FROM charges
WHERE customer LIKE $1 GROUP BY status`, prefix+"%")
	if err != nil {
		return nil, fmt.Errorf("bench: check charges: %w", err)
	}
	for rows.Next() {
		var status string
		var n int
		var captured, refunded int64
		if err := rows.Scan(&status, &n, &captured, &refunded); err != nil {
			rows.Close()
			return nil, err
		}
		c.Charges[status] += n
		c.Captured += captured
		c.Refunded += refunded
	}
	rows.Close()
	if c.Captured-c.Refunded != c.ConfirmedPrice {
		c.MoneyOK = false
		c.Problems = append(c.Problems, fmt.Sprintf("captured %d − refunded %d ≠ %d, the price of the confirmed bookings",
			c.Captured, c.Refunded, c.ConfirmedPrice))
	}
	if c.Charges["CAPTURED"] != c.Confirmed {
		c.MoneyOK = false
		c.Problems = append(c.Problems, fmt.Sprintf("%d captured charges for %d confirmed bookings", c.Charges["CAPTURED"], c.Confirmed))
	}
	// An authorization attached to a finished booking must have been
	// captured or voided.
	var dangling int
	if err := db.QueryRowContext(ctx, `SELECT count(*) FROM charges c JOIN bookings b ON b.payment_token = c.id
WHERE b.resource_id IN (`+in+`) AND b.status <> 'UNCONFIRMED' AND c.status = 'AUTHORIZED'`, args...).Scan(&dangling); err != nil {
		return nil, err
	}
	if dangling > 0 {
		c.MoneyOK = false
		c.Problems = append(c.Problems, fmt.Sprintf("%d finished bookings whose authorization was neither captured nor voided", dangling))
	}

	// Executions and rows written.
	rows, err = db.QueryContext(ctx, `SELECT x.status, count(*) FROM executions x JOIN bookings b ON b.execution_id = x.id
WHERE b.resource_id IN (`+in+`) GROUP BY x.status`, args...)
	if err != nil {
		return nil, err
	}
	for rows.Next() {
		var status string
		var n int
		if err := rows.Scan(&status, &n); err != nil {
			rows.Close()
			return nil, err
		}
		c.Executions["processBooking/"+status] = n
	}
	rows.Close()
	var dead, running int
	if err := db.QueryRowContext(ctx, `SELECT
CAST(COALESCE(sum(CASE WHEN status = 'DEAD' THEN 1 ELSE 0 END), 0) AS BIGINT),
CAST(COALESCE(sum(CASE WHEN status = 'RUNNING' THEN 1 ELSE 0 END), 0) AS BIGINT)
FROM executions`).Scan(&dead, &running); err != nil {
		return nil, err
	}
	c.Executions["all/DEAD"], c.Executions["all/RUNNING"] = dead, running
	if dead > 0 {
		c.Problems = append(c.Problems, fmt.Sprintf("%d executions in the dead-letter queue", dead))
	}
	if bookings := c.Confirmed + c.Cancelled + c.Unconfirmed; bookings > 0 {
		var h, e, x int
		if err := db.QueryRowContext(ctx, `SELECT (SELECT count(*) FROM history), (SELECT count(*) FROM events), (SELECT count(*) FROM executions)`).
			Scan(&h, &e, &x); err != nil {
			return nil, err
		}
		c.HistoryPerBooking = round1(float64(h) / float64(bookings))
		c.EventsPerBooking = round1(float64(e) / float64(bookings))
		c.ExecutionsPerBooking = round1(float64(x) / float64(bookings))
	}
	return c, nil
}
