package main

import (
	"bufio"
	"bytes"
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/store"
	_ "github.com/jackc/pgx/v5/stdlib" // database/sql driver "pgx" for the checks
)

// The harness of the PostgreSQL tests: several `berth serve` processes on
// one database (a cluster), clients that behave like a load balancer's
// users (a request that fails in transport or with UNAVAILABLE is sent
// again, with the same idempotency key, to the next replica), and the
// invariants every run must end with, checked in the database.

// launching is a berth serve process that has not reported its address yet.
type launching struct {
	s    *server
	urlc chan string
}

// launch starts `bin serve` with data in dir (see startServer) without
// waiting for it: several replicas can start at once.
func launch(t *testing.T, bin, dir string, args ...string) *launching {
	t.Helper()
	args = append([]string{"serve", "--addr", "127.0.0.1:0", "--data", dir, "--log-level", "warn"}, args...)
	cmd := exec.Command(bin, args...)
	cmd.Env = raceEnv()
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	s := &server{t: t, cmd: cmd, data: dir, logs: &syncBuffer{}, done: make(chan struct{})}
	cmd.Stderr = s.logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	l := &launching{s: s, urlc: make(chan string, 1)}
	go func() {
		sc := bufio.NewScanner(out)
		for sc.Scan() {
			if m := listenRE.FindStringSubmatch(sc.Text()); m != nil {
				l.urlc <- m[1]
			}
		}
	}()
	go func() { _ = cmd.Wait(); close(s.done) }()
	t.Cleanup(func() { s.stop() })
	return l
}

// wait returns the server once it listens.
func (l *launching) wait() *server {
	l.s.t.Helper()
	select {
	case l.s.url = <-l.urlc:
	case <-l.s.done:
		l.s.t.Fatalf("berth serve exited: %s", l.s.logs)
	case <-time.After(60 * time.Second):
		l.s.t.Fatalf("berth serve did not start: %s", l.s.logs)
	}
	return l.s
}

// raceEnv is the environment for the (race-enabled) binary: without the
// race runtime's default one-second sleep at exit, which made minting 300
// tokens take most of a minute.
func raceEnv() []string {
	return append(os.Environ(), "GORACE=atexit_sleep_ms=0")
}

// cluster is a group of replicas sharing one PostgreSQL database and one
// data directory (for the token signing key).
type cluster struct {
	t     *testing.T
	bin   string
	dbURL string
	dir   string
	args  []string
	reps  []*server
	down  []atomic.Bool // taken out of rotation (killed)
	sql   *sql.DB       // for the checks
	store *store.DB     // for the checks that use berth's own reads
	// retried counts requests sent again to another replica, or again to
	// the same one after UNAVAILABLE.
	retried atomic.Int64
	// firstFailure and lastFailure (unix nanos) bound the requests that
	// failed in transport or with UNAVAILABLE, INTERNAL or TIMEOUT.
	firstFailure, lastFailure atomic.Int64
	mu                        sync.Mutex
	failures                  map[string]int // why, how many times
}

func (c *cluster) failed(why string) {
	c.mu.Lock()
	if c.failures == nil {
		c.failures = map[string]int{}
	}
	if len(why) > 120 {
		why = why[:120]
	}
	c.failures[why]++
	c.mu.Unlock()
	now := time.Now().UnixNano()
	c.firstFailure.CompareAndSwap(0, now)
	c.lastFailure.Store(now)
}

// failureWindow tells when requests failed, relative to since.
func (c *cluster) failureWindow(since time.Time) string {
	if c.firstFailure.Load() == 0 {
		return "never"
	}
	rel := func(ns int64) string { return time.Unix(0, ns).Sub(since).Round(time.Millisecond).String() }
	return "from +" + rel(c.firstFailure.Load()) + " to +" + rel(c.lastFailure.Load())
}

// startCluster starts n replicas at once on dbURL.
func startCluster(t *testing.T, bin, dbURL string, n int, args ...string) *cluster {
	t.Helper()
	c := &cluster{t: t, bin: bin, dbURL: dbURL, dir: t.TempDir(), args: append([]string{"--database", dbURL}, args...),
		down: make([]atomic.Bool, n)}
	ls := make([]*launching, n)
	for i := range ls {
		ls[i] = launch(t, bin, c.dir, c.args...)
	}
	for _, l := range ls {
		c.reps = append(c.reps, l.wait())
	}
	var err error
	if c.sql, err = sql.Open("pgx", dbURL); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.sql.Close() })
	if c.store, err = store.Open(context.Background(), store.Config{URL: dbURL, MaxConns: 2, Logger: slog.New(slog.DiscardHandler)}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.store.Close() })
	return c
}

// token mints a token with `berth token` on the shared data directory;
// with the database given, a username (admin) resolves to its account.
func (c *cluster) token(sub string, groups ...string) string {
	args := []string{"token", "--data", c.dir, "--database", c.dbURL, "--sub", sub}
	if len(groups) > 0 {
		args = append(args, "--groups", strings.Join(groups, ","))
	}
	var out, errb bytes.Buffer
	cmd := exec.Command(c.bin, args...)
	cmd.Env = raceEnv()
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		c.t.Errorf("berth %s: %v\n%s", strings.Join(args, " "), err, errb.String())
	}
	return strings.TrimSpace(out.String())
}

// tokens mints one customer token per subject, a few at a time.
func (c *cluster) tokens(subjects []string) []string {
	out := make([]string, len(subjects))
	var wg sync.WaitGroup
	sem := make(chan struct{}, 8)
	for i, sub := range subjects {
		wg.Add(1)
		sem <- struct{}{}
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			out[i] = c.token(sub, berth.GroupCustomer)
		}()
	}
	wg.Wait()
	return out
}

// kill ends replica i with SIGKILL and takes it out of rotation.
func (c *cluster) kill(i int) {
	c.reps[i].kill()
	c.down[i].Store(true)
}

var httpClient = &http.Client{Timeout: 60 * time.Second}

// post sends a GraphQL request; a transport failure or a 5xx answer without
// a GraphQL body is an error (the request may be sent elsewhere).
func post(url, token, query string, vars map[string]any) (*gqlResponse, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+token)
	resp, err := httpClient.Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return nil, err
	}
	var r gqlResponse
	if err := json.Unmarshal(b, &r); err != nil {
		return nil, fmt.Errorf("status %d: %q", resp.StatusCode, b)
	}
	r.Status = resp.StatusCode
	return &r, nil
}

// errGaveUp ends a request that kept failing.
var errGaveUp = errors.New("gave up")

// do sends a mutation or query, starting at replica start and moving on to
// the next live replica when one fails in transport or answers UNAVAILABLE,
// INTERNAL or TIMEOUT (as a client behind a load balancer would, with the
// same idempotency key), and decodes field into v. A business error (any
// other code) is returned as is.
func (c *cluster) do(start int, token, query string, vars map[string]any, field string, v any) error {
	deadline := time.Now().Add(90 * time.Second)
	var last error
	for try := 0; time.Now().Before(deadline); try++ {
		i := (start + try) % len(c.reps)
		if c.down[i].Load() {
			continue
		}
		if try > 0 {
			c.retried.Add(1)
			time.Sleep(min(time.Duration(try)*20*time.Millisecond, 500*time.Millisecond))
		}
		r, err := post(c.reps[i].url, token, query, vars)
		if err != nil {
			c.failed(err.Error())
			last = err
			continue
		}
		switch code := r.code(); code {
		case "":
			return json.Unmarshal(r.Data[field], v)
		case berth.EUNAVAILABLE, berth.EINTERNAL, berth.ETIMEOUT:
			if !strings.Contains(r.Errors[0].Message, "payment provider") {
				c.failed(code + ": " + r.Errors[0].Message) // not the payment provider's injected failures
			}
			last = fmt.Errorf("%s: %s", code, r.Errors[0].Message)
			continue
		default:
			return &berth.Error{Code: code, Message: r.Errors[0].Message}
		}
	}
	return fmt.Errorf("%w: %s: %v", errGaveUp, field, last)
}

// createFlight adds a flight with seats at price (EUR cents).
func (c *cluster) createFlight(admin string, number, seats int, price int64) flight {
	var f flight
	err := c.do(0, admin, `mutation($n: Int!, $s: Int!, $p: Int!) { createFlight(input: {departureDate: "2027-03-01T08:00:00Z",
		departureAirportCode: "LGW", departureAirportName: "London Gatwick", departureCity: "London", departureLocale: "Europe/London",
		arrivalDate: "2027-03-01T10:15:00Z", arrivalAirportCode: "MAD", arrivalAirportName: "Madrid Barajas", arrivalCity: "Madrid",
		arrivalLocale: "Europe/Madrid", ticketPrice: $p, ticketCurrency: "EUR", flightNumber: $n, seatCapacity: $s}) { `+flightFields+` } }`,
		map[string]any{"n": number, "s": seats, "p": price}, "createFlight", &f)
	if err != nil {
		c.t.Fatalf("createFlight: %v", err)
	}
	return f
}

// bookOne is a customer's whole purchase: authorize the price, then book,
// both idempotent by keys derived from key, starting at replica start.
func (c *cluster) bookOne(start int, token, key, flightID string, price int64) (booking, error) {
	var ch struct{ ID string }
	if err := c.do(start, token, `mutation($a: Int!, $k: String!) { createCharge(amount: $a, currency: "EUR", token: "tok_visa", idempotencyKey: $k) { id } }`,
		map[string]any{"a": price, "k": key + ":charge"}, "createCharge", &ch); err != nil {
		return booking{}, fmt.Errorf("createCharge: %w", err)
	}
	var b booking
	err := c.do(start, token, `mutation($in: CreateBookingInput!) { processBooking(input: $in) { id status } }`,
		map[string]any{"in": map[string]any{"bookingOutboundFlightId": flightID, "paymentToken": ch.ID, "idempotencyKey": key + ":book"}},
		"processBooking", &b)
	if err != nil {
		return booking{}, fmt.Errorf("processBooking: %w", err)
	}
	return b, nil
}

// waitSettled waits until no execution is RUNNING and no booking is
// UNCONFIRMED, and returns when that was first seen.
func (c *cluster) waitSettled(timeout time.Duration) time.Time {
	c.t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		var running, unconfirmed int
		err := c.sql.QueryRow(`SELECT (SELECT count(*) FROM executions WHERE status = 'RUNNING'),
			(SELECT count(*) FROM bookings WHERE status = 'UNCONFIRMED')`).Scan(&running, &unconfirmed)
		if err == nil && running == 0 && unconfirmed == 0 {
			return time.Now()
		}
		if time.Now().After(deadline) {
			c.t.Fatalf("after %s: %d executions RUNNING, %d bookings UNCONFIRMED (err %v)", timeout, running, unconfirmed, err)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// outcome summarizes a settled run.
type outcome struct {
	executions, bookings, confirmed, cancelled int
	captured, refunded, prices                 int64
	soldOut                                    int // flights with no seat left
	confirmLatency                             []time.Duration
}

// checkInvariants checks, in the database, everything a run must end with:
//   - every execution terminal (none RUNNING, none DEAD), with exactly one
//     terminal history entry matching its status, and no step recorded as
//     succeeded (or compensated) twice in one execution;
//   - every booking CONFIRMED or CANCELLED, at most one per idempotency key;
//   - per flight: seats sold = confirmed bookings = seats held; a flight
//     with more requests than seats (oversold) sold out exactly;
//   - per charge: berth's captured/refunded = the provider's; at most one
//     successful capture and refund per authorization at the provider;
//     money captured − refunded = the prices of the confirmed bookings.
func (c *cluster) checkInvariants(oversubscribed map[string]bool) outcome {
	t := c.t
	t.Helper()
	var o outcome
	q := func(query string, args ...any) *sql.Rows {
		t.Helper()
		rows, err := c.sql.Query(query, args...)
		if err != nil {
			t.Fatalf("%s: %v", query, err)
		}
		return rows
	}

	// Executions and their history.
	rows := q(`SELECT x.id, x.definition, x.status,
		count(h.seq) FILTER (WHERE h.type = $1), count(h.seq) FILTER (WHERE h.type = $2), count(h.seq) FILTER (WHERE h.type = $3)
		FROM executions x LEFT JOIN history h ON h.execution_id = x.id GROUP BY x.id, x.definition, x.status`,
		berth.HistExecutionSucceeded, berth.HistExecutionFailed, berth.HistExecutionDead)
	byStatus := map[string]int{}
	for rows.Next() {
		var id, def, status string
		var succ, failed, dead int
		if err := rows.Scan(&id, &def, &status, &succ, &failed, &dead); err != nil {
			t.Fatal(err)
		}
		o.executions++
		byStatus[def+" "+status]++
		want := [3]int{}
		switch berth.ExecutionStatus(status) {
		case berth.ExecutionSucceeded:
			want[0] = 1
		case berth.ExecutionFailed:
			want[1] = 1
		default:
			t.Errorf("execution %s (%s) is %s, want SUCCEEDED or FAILED", id, def, status)
			continue
		}
		if got := [3]int{succ, failed, dead}; got != want {
			t.Errorf("execution %s is %s with terminal history entries succeeded/failed/dead = %v, want %v", id, status, got, want)
		}
	}
	rows.Close()
	rows = q(`SELECT execution_id, type, state, count(*) FROM history WHERE type IN ($1, $2)
		GROUP BY execution_id, type, state HAVING count(*) > 1`, berth.HistStateSucceeded, berth.HistCompensated)
	for rows.Next() {
		var id, typ, state string
		var n int
		if err := rows.Scan(&id, &typ, &state, &n); err != nil {
			t.Fatal(err)
		}
		t.Errorf("execution %s: %s %q recorded %d times", id, typ, state, n)
	}
	rows.Close()
	t.Logf("executions: %v", byStatus)

	// Bookings, seats and money, through berth's own reads.
	ctx := context.Background()
	type perFlight struct{ confirmed int }
	flights := map[string]*perFlight{}
	var refs []string
	err := c.store.View(ctx, func(tx berth.Tx) error {
		var after *berth.Cursor
		for {
			bs, err := tx.ListBookings(berth.BookingQuery{Page: berth.Page{After: after, Limit: 500}})
			if err != nil {
				return err
			}
			for _, b := range bs {
				o.bookings++
				pf := flights[b.ResourceID]
				if pf == nil {
					pf = &perFlight{}
					flights[b.ResourceID] = pf
				}
				ch, err := tx.GetCharge(b.PaymentToken)
				if err != nil {
					return err
				}
				switch b.Status {
				case berth.BookingConfirmed:
					o.confirmed++
					pf.confirmed++
					o.prices += b.Price
					if ch.Status != berth.ChargeCaptured || ch.Captured != b.Price || ch.Refunded != 0 {
						t.Errorf("confirmed booking %s: charge %s captured %d refunded %d, want CAPTURED %d", b.ID, ch.Status, ch.Captured, ch.Refunded, b.Price)
					}
				case berth.BookingCancelled:
					o.cancelled++
					if ch.Captured != ch.Refunded {
						t.Errorf("cancelled booking %s: charge %s captured %d refunded %d", b.ID, ch.Status, ch.Captured, ch.Refunded)
					}
				default:
					t.Errorf("booking %s is %s", b.ID, b.Status)
				}
				o.captured += ch.Captured
				o.refunded += ch.Refunded
				refs = append(refs, ch.ProviderRef)
				// The provider's record of this authorization agrees.
				pc, pr, err := payment.Ledger(ctx, c.store, []string{ch.ProviderRef})
				if err != nil {
					return err
				}
				if pc != ch.Captured || pr != ch.Refunded {
					t.Errorf("charge %s: berth says captured %d refunded %d, the provider %d and %d", ch.ID, ch.Captured, ch.Refunded, pc, pr)
				}
			}
			if len(bs) < 500 {
				break
			}
			after = &berth.Cursor{Key: bs[len(bs)-1].ID, ID: bs[len(bs)-1].ID}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if o.captured-o.refunded != o.prices {
		t.Errorf("berth's charges: captured %d - refunded %d = %d, confirmed prices %d", o.captured, o.refunded, o.captured-o.refunded, o.prices)
	}
	pc, pr, err := payment.Ledger(ctx, c.store, refs)
	if err != nil {
		t.Fatal(err)
	}
	if pc-pr != o.prices {
		t.Errorf("the provider's ledger: captured %d - refunded %d = %d, confirmed prices %d", pc, pr, pc-pr, o.prices)
	}

	// At the provider, one successful capture and at most one refund per
	// authorization, whatever the number of attempts.
	rows = q(`SELECT value FROM kv WHERE namespace = 'paysim.op'`)
	ops := map[string]int{}
	for rows.Next() {
		var v string
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		var op struct{ Op, Ref, Code string }
		if err := json.Unmarshal([]byte(v), &op); err != nil {
			t.Fatal(err)
		}
		if op.Code == "" && (op.Op == "capture" || op.Op == "refund") {
			ops[op.Op+" "+op.Ref]++
		}
	}
	rows.Close()
	for k, n := range ops {
		if n > 1 {
			t.Errorf("provider: %s succeeded %d times", k, n)
		}
	}

	// One booking per customer and idempotency key.
	rows = q(`SELECT customer, idempotency_key, count(*) FROM bookings GROUP BY customer, idempotency_key HAVING count(*) > 1`)
	for rows.Next() {
		var cust, key sql.NullString
		var n int
		_ = rows.Scan(&cust, &key, &n)
		t.Errorf("customer %s key %s has %d bookings", cust.String, key.String, n)
	}
	rows.Close()

	// Seats: sold = confirmed = held, per flight.
	rows = q(`SELECT r.id, r.name, r.capacity, r.available,
		COALESCE((SELECT sum(quantity) FROM holds h WHERE h.resource_id = r.id AND h.status = $1), 0)
		FROM resources r`, berth.HoldHeld)
	for rows.Next() {
		var id, name string
		var capacity, available, held int
		if err := rows.Scan(&id, &name, &capacity, &available, &held); err != nil {
			t.Fatal(err)
		}
		pf := flights[id]
		if pf == nil {
			pf = &perFlight{}
		}
		sold := capacity - available
		if sold != pf.confirmed || held != sold {
			t.Errorf("flight %s: sold %d, held %d, confirmed bookings %d", name, sold, held, pf.confirmed)
		}
		if available == 0 {
			o.soldOut++
		}
		if oversubscribed[id] && available != 0 {
			t.Errorf("flight %s had more requests than seats but %d of %d seats are left", name, available, capacity)
		}
	}
	rows.Close()

	// Time to confirmed: from the request (the booking row) to the commit
	// of Confirm Booking.
	rows = q(`SELECT h.at - b.created_at FROM bookings b JOIN history h ON h.execution_id = b.execution_id
		AND h.type = $1 AND h.state = 'Confirm Booking' WHERE b.status = 'CONFIRMED'`, berth.HistStateSucceeded)
	for rows.Next() {
		var us int64
		if err := rows.Scan(&us); err != nil {
			t.Fatal(err)
		}
		o.confirmLatency = append(o.confirmLatency, time.Duration(us)*time.Microsecond)
	}
	rows.Close()
	slices.Sort(o.confirmLatency)
	return o
}

// percentile returns the p-th percentile (0..100) of sorted durations.
func percentile(sorted []time.Duration, p float64) time.Duration {
	if len(sorted) == 0 {
		return 0
	}
	i := int(p / 100 * float64(len(sorted)-1))
	return sorted[i].Round(time.Millisecond)
}

// leasedBy returns the RUNNING executions leased by the replica process pid
// (lease owners are host-pid-random).
func (c *cluster) leasedBy(pid int) []string {
	rows, err := c.sql.Query(`SELECT id FROM executions WHERE status = 'RUNNING' AND lease_owner LIKE $1`, fmt.Sprintf("%%-%d-%%", pid))
	if err != nil {
		c.t.Errorf("leased executions: %v", err)
		return nil
	}
	defer rows.Close()
	var ids []string
	for rows.Next() {
		var id string
		_ = rows.Scan(&id)
		ids = append(ids, id)
	}
	return ids
}
