package main

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth/internal/testdb"
)

// TestReplicasOnPostgres runs three `berth serve` processes on one
// PostgreSQL database and sends them 300 bookings round-robin, for four
// flights with fewer seats than requests, while the simulated payment
// provider fails 20% of its calls. One replica is killed with SIGKILL in the
// middle, while it holds saga leases; the survivors take its executions over
// when the leases expire, and its clients retry elsewhere with the same
// idempotency keys. Then every invariant is checked in the database (see
// checkInvariants): every execution terminal and finished once, no seat sold
// twice or lost, no charge captured twice, money = confirmed prices.
func TestReplicasOnPostgres(t *testing.T) {
	dbURL := testdb.URL(t, "postgres") // skips without PostgreSQL (fails in CI)
	const (
		replicas  = 3
		customers = 300
		price     = 7500
		killAfter = 100 // bookings accepted before the kill
		// The shortest lease berth accepts: saga.Register requires every
		// action's timeout to be at most half the lease, and the webhook
		// delivery's is 12s (other actions default to 10s).
		lease = "24s"
	)
	began := time.Now()
	// All three start at once with --demo: the demo data must be loaded once.
	c := startCluster(t, binPath, dbURL, replicas, "--demo", "--lease", lease, "--payment-failure-rate", "0.2",
		"--step-backoff", "50ms", "--step-attempts", "10", "--max-conns", "8")
	var demo int
	if err := c.sql.QueryRow(`SELECT count(*) FROM flights WHERE flight_number = 1830`).Scan(&demo); err != nil || demo != 1 {
		t.Fatalf("demo flight 1830 exists %d times (%v): three replicas starting at once loaded the demo data more than once", demo, err)
	}
	t.Logf("%d replicas started at once in %s", replicas, time.Since(began).Round(time.Millisecond))
	admin := c.token("admin")

	// Four flights; every one but the last has fewer seats than requests.
	seats := []int{40, 50, 60, 90}
	flights := make([]flight, len(seats))
	over := map[string]bool{}
	for i, n := range seats {
		flights[i] = c.createFlight(admin, 5000+i, n, price)
		over[flights[i].ID] = customers/len(seats) > n
	}
	subjects := make([]string, customers)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("replica-customer-%03d", i)
	}
	tokens := c.tokens(subjects)
	t.Logf("setup: %d replicas, %d flights, %d tokens in %s", replicas, len(flights), len(tokens), time.Since(began).Round(time.Millisecond))

	// Kill replica 2 once killAfter bookings are accepted, at a moment it
	// holds leases on running executions.
	var accepted atomic.Int64
	killed := make(chan []string, 1)
	go func() {
		for accepted.Load() < killAfter {
			time.Sleep(5 * time.Millisecond)
		}
		victim := c.reps[2]
		var held []string
		for deadline := time.Now().Add(10 * time.Second); len(held) == 0 && time.Now().Before(deadline); time.Sleep(2 * time.Millisecond) {
			held = c.leasedBy(victim.cmd.Process.Pid)
		}
		c.kill(2)
		killed <- held
	}()

	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	var failed atomic.Int64
	for range 30 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				f := flights[i%len(flights)]
				if _, err := c.bookOne(i%replicas, tokens[i], subjects[i], f.ID, price); err != nil {
					failed.Add(1)
					t.Errorf("customer %d: %v", i, err)
					continue
				}
				accepted.Add(1)
			}
		}()
	}
	for i := range customers {
		work <- i
	}
	close(work)
	wg.Wait()
	submitted := time.Since(start)
	var held []string
	select {
	case held = <-killed:
	case <-time.After(15 * time.Second):
		t.Fatal("replica 2 was not killed")
	}
	if len(held) == 0 {
		t.Errorf("replica 2 held no lease when it was killed")
	}
	settled := c.waitSettled(90 * time.Second)
	elapsed := settled.Sub(start)

	o := c.checkInvariants(over)
	if o.bookings != customers || failed.Load() != 0 {
		t.Errorf("%d bookings in the database, %d requests failed; want %d and 0", o.bookings, failed.Load(), customers)
	}
	want := 0
	for _, n := range seats {
		want += min(n, customers/len(seats))
	}
	if o.confirmed != want {
		t.Errorf("%d bookings confirmed, want %d (every seat of the oversubscribed flights, every request of the other)", o.confirmed, want)
	}
	for i := range 2 {
		if c.reps[i].cmd.ProcessState != nil {
			t.Errorf("replica %d exited: %s", i, c.reps[i].logs)
		}
	}
	t.Logf("replica 2 killed (SIGKILL) holding leases on %d running executions; %d requests were sent again", len(held), c.retried.Load())
	t.Logf("%d bookings submitted in %s (%.0f/s); all %d executions terminal %s after the first request (lease %s)",
		customers, submitted.Round(time.Millisecond), customers/submitted.Seconds(), o.executions, elapsed.Round(time.Millisecond), lease)
	t.Logf("%d confirmed, %d cancelled; %d of %d flights sold out; captured %d, refunded %d, confirmed prices %d",
		o.confirmed, o.cancelled, o.soldOut, len(flights)+len(demoFlights), o.captured, o.refunded, o.prices)
	t.Logf("time to confirmed: p50 %s, p99 %s, max %s", percentile(o.confirmLatency, 50), percentile(o.confirmLatency, 99), percentile(o.confirmLatency, 100))
}
