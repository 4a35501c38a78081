package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"math/rand/v2"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/payment"
)

// TestChaosKill9 is the crash test: clients book, replay and cancel without
// pause while the server is killed with SIGKILL and restarted on the same
// data, BERTH_CHAOS_RESTARTS times (default 5; `make chaos` runs 50). The
// payment provider fails 20% of its calls, a webhook receiver fails half
// of its deliveries, and some cards are declined at capture or refuse
// refunds. A client whose request dies with the server sends it again
// with the same idempotency keys, as a real client would. At the end the
// dead-letter queue is healed and redriven, and every invariant is checked
// in the database (internal/faults.Check): seats, tickets, money at berth
// and at the provider, executions, loyalty; then every request is replayed
// and nothing may change.
func TestChaosKill9(t *testing.T) {
	t.Parallel()
	restarts := 5
	if v := os.Getenv("BERTH_CHAOS_RESTARTS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			t.Fatalf("BERTH_CHAOS_RESTARTS=%q: want a positive number", v)
		}
		restarts = n
	}
	started := time.Now()
	dir := t.TempDir()
	args := []string{"--payment-failure-rate", "0.2", "--step-backoff", "20ms"}
	var cur atomic.Pointer[server]
	cur.Store(startServer(t, dir, args...))
	s := cur.Load()

	issuer, err := auth.LoadOrCreateIssuer(dir, "berth", "berth")
	if err != nil {
		t.Fatal(err)
	}
	mint := func(sub string, groups ...string) string {
		tok, err := issuer.Mint(sub, sub, groups, 2*time.Hour)
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	admin := mint("chaos-admin", "Admin")
	rcv := &flakyReceiver{}
	hook := httptest.NewServer(rcv)
	defer hook.Close()
	s.must(s.gql(admin, `mutation($u: String!) { registerWebhook(url: $u) { id } }`, map[string]any{"u": hook.URL}), "registerWebhook", &struct{ ID string }{})
	var flights []string
	for i := range 3 {
		var f flight
		s.must(s.gql(admin, fmt.Sprintf(`mutation { createFlight(input: {departureDate: "2027-03-0%dT08:00:00Z", departureAirportCode: "LGW",
			departureAirportName: "London Gatwick", departureCity: "London", departureLocale: "Europe/London",
			arrivalDate: "2027-03-0%dT10:15:00Z", arrivalAirportCode: "MAD", arrivalAirportName: "Madrid Barajas",
			arrivalCity: "Madrid", arrivalLocale: "Europe/Madrid", ticketPrice: 5000, ticketCurrency: "EUR",
			flightNumber: %d, seatCapacity: 40}) { `+flightFields+` } }`, i+1, i+1, 7000+i), nil), "createFlight", &f)
		flights = append(flights, f.ID)
	}

	// The clients.
	type request struct {
		token, card, flight, key string
		booking                  string
	}
	var (
		mu       sync.Mutex
		requests []*request
		sent     atomic.Int64 // requests sent, retries included
		failed   atomic.Int64 // requests that died with the server or got UNAVAILABLE
	)
	// call sends a request until it gets an answer that is not a crash: a
	// transport error or UNAVAILABLE is retried (on the server that is up
	// by then) with the same body, so with the same idempotency keys.
	stop := make(chan struct{})
	call := func(token, query string, vars map[string]any) (*gqlResponse, bool) {
		for {
			sent.Add(1)
			r, err := post(cur.Load().url, token, query, vars)
			if err == nil && r.code() != berth.EUNAVAILABLE && r.code() != berth.EINTERNAL {
				return r, true
			}
			failed.Add(1)
			select {
			case <-stop:
				return nil, false
			case <-time.After(50 * time.Millisecond):
			}
		}
	}
	book := func(q *request) {
		amount := 5000
		r, ok := call(q.token, `mutation($a: Int!, $t: String!, $k: String) { createCharge(amount: $a, currency: "EUR", token: $t, idempotencyKey: $k) { id } }`,
			map[string]any{"a": amount, "t": q.card, "k": "charge-" + q.key})
		if !ok || r.code() != "" {
			return
		}
		var ch struct{ ID string }
		_ = json.Unmarshal(r.Data["createCharge"], &ch)
		r, ok = call(q.token, `mutation($in: CreateBookingInput!) { processBooking(input: $in) { id } }`,
			map[string]any{"in": map[string]any{"bookingOutboundFlightId": q.flight, "paymentToken": ch.ID, "idempotencyKey": q.key}})
		if !ok {
			return
		}
		if r.code() != "" {
			t.Errorf("processBooking %s: %+v", q.key, r.Errors)
			return
		}
		var b booking
		_ = json.Unmarshal(r.Data["processBooking"], &b)
		mu.Lock()
		if q.booking != "" && q.booking != b.ID {
			t.Errorf("request %s replayed: booking %s, first %s", q.key, b.ID, q.booking)
		}
		q.booking = b.ID
		mu.Unlock()
	}
	cards := []string{payment.TokenVisa, payment.TokenVisa, payment.TokenVisa, payment.TokenVisa, payment.TokenMastercard,
		payment.TokenCaptureFail, payment.TokenRefundFail}
	var wg sync.WaitGroup
	var cancels atomic.Int64
	for w := range 6 {
		wg.Go(func() {
			token := mint(fmt.Sprintf("chaos-customer-%d", w), "customer")
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				mu.Lock()
				var old *request
				if len(requests) > 0 && rand.IntN(5) == 0 {
					old = requests[rand.IntN(len(requests))]
				}
				mu.Unlock()
				switch {
				case old != nil && rand.IntN(2) == 0 && old.booking != "":
					// Cancel a booking (if it is confirmed; else CONFLICT).
					r, ok := call(old.token, `mutation($id: ID!) { cancelBooking(id: $id) { id status } }`, map[string]any{"id": old.booking})
					if ok && r.code() == "" {
						cancels.Add(1)
					}
				case old != nil:
					book(old) // a replay: same keys, same booking
				default:
					q := &request{token: token, card: cards[rand.IntN(len(cards))], flight: flights[rand.IntN(len(flights))],
						key: fmt.Sprintf("chaos-%d-%d", w, n)}
					mu.Lock()
					requests = append(requests, q)
					mu.Unlock()
					book(q)
				}
			}
		})
	}

	// The killer.
	db := openData(t, dir)
	ctx := context.Background()
	var inFlight []int
	for i := range restarts {
		time.Sleep(time.Duration(400+rand.IntN(1200)) * time.Millisecond)
		cur.Load().kill()
		var running int
		_ = db.View(ctx, func(tx berth.Tx) (err error) { running, err = tx.CountExecutions(berth.ExecutionRunning); return err })
		inFlight = append(inFlight, running)
		cur.Store(startServer(t, dir, args...))
		t.Logf("restart %d/%d: killed with %d executions running", i+1, restarts, running)
	}
	time.Sleep(time.Second)
	close(stop)
	wg.Wait()
	loadDone := time.Now()

	// Settle: let the sagas end, heal the refusing cards, redrive.
	waitQuiet := func() {
		deadline := time.Now().Add(3 * time.Minute)
		for {
			n, err := runningCount(ctx, db)
			if err == nil && n == 0 {
				return
			}
			if time.Now().After(deadline) {
				t.Fatalf("%d executions still running (%v)", n, err)
			}
			// Deliveries may wait minutes for their next retry: the
			// receiver is back, retry them now.
			_, _ = faults.Hurry(ctx, db)
			time.Sleep(500 * time.Millisecond)
		}
	}
	rcv.heal()
	waitQuiet()
	if _, err := faults.HealAll(ctx, db); err != nil {
		t.Fatal(err)
	}
	redriven := 0
	for range 5 {
		n, err := faults.RedriveAll(ctx, db)
		if err != nil {
			t.Fatal(err)
		}
		if n == 0 {
			break
		}
		redriven += n
		waitQuiet()
	}
	rep, err := faults.Check(ctx, db, faults.Options{Quiescent: true})
	if err != nil {
		t.Fatal(err)
	}
	if err := rep.Err(); err != nil {
		t.Fatal(err)
	}
	if len(rep.Dead) > 0 {
		t.Fatalf("dead after heal and redrive: %v", rep.Dead)
	}

	// Replays change nothing.
	before := rep
	mu.Lock()
	all := append([]*request(nil), requests...)
	mu.Unlock()
	replayed := 0
	for _, q := range all {
		if q.booking == "" {
			continue
		}
		book(q)
		replayed++
	}
	waitQuiet()
	after, err := faults.Check(ctx, db, faults.Options{Quiescent: true})
	if err != nil {
		t.Fatal(err)
	}
	if d := faults.EffectsDiff(before, after); len(d) > 0 || after.Err() != nil {
		t.Fatalf("replays had an effect: %v %v", d, after.Err())
	}
	completed := rep.Executions[berth.ExecutionSucceeded] + rep.Executions[berth.ExecutionFailed]
	t.Logf("CHAOS: %d kill -9 restarts survived (executions running at the kills: %v); %d requests sent (%d died with the server or got UNAVAILABLE and were sent again), %d replayed at the end; "+
		"%d bookings: %d confirmed, %d cancelled (%d by customers); %d executions completed, %d dead letters redriven after healing; "+
		"webhooks: %d delivered, %d refused; %d seats sold of %d; captured %d − refunded %d = %d = confirmed; 0 invariant violations; load %s, total %s",
		restarts, inFlight, sent.Load(), failed.Load(), replayed, rep.Bookings, rep.ByStatus[berth.BookingConfirmed], rep.ByStatus[berth.BookingCancelled],
		cancels.Load(), completed, redriven, rcv.ok.Load(), rcv.refused.Load(), rep.Sold, rep.Capacity, rep.Captured, rep.Refunded,
		rep.Captured-rep.Refunded, loadDone.Sub(started).Round(time.Millisecond), time.Since(started).Round(time.Millisecond))
}

func runningCount(ctx context.Context, db berth.Store) (int, error) {
	var n int
	err := db.View(ctx, func(tx berth.Tx) (err error) { n, err = tx.CountExecutions(berth.ExecutionRunning); return err })
	return n, err
}

// flakyReceiver is a webhook receiver that refuses every other delivery
// until healed.
type flakyReceiver struct {
	n, ok, refused atomic.Int64
	healed         atomic.Bool
}

func (r *flakyReceiver) heal() { r.healed.Store(true) }

func (r *flakyReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	_, _ = io.Copy(io.Discard, req.Body)
	if !r.healed.Load() && r.n.Add(1)%2 == 0 {
		r.refused.Add(1)
		http.Error(w, "busy", http.StatusServiceUnavailable)
		return
	}
	r.ok.Add(1)
}
