package main

import (
	"context"
	"database/sql"
	"fmt"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth/internal/testdb"
	"github.com/jackc/pgx/v5"
)

// EnvPGRestart enables TestPostgresRestartUnderLoad. It restarts the local
// PostgreSQL cluster, which breaks every other connection to it (other
// tests' databases included), so it never runs by default or in CI.
const EnvPGRestart = "BERTH_TEST_PG_RESTART"

// TestPostgresRestartUnderLoad restarts PostgreSQL (pg_ctlcluster … restart:
// a fast shutdown, every session ended with 57P01) while two replicas take
// bookings — or, with BERTH_TEST_PG_DOWN=15s, stops it for that long, past
// what Update's retries bridge — and checks that berth carries on: the replicas stay up and
// reconnect (pool and LISTEN), clients that got UNAVAILABLE succeed when
// they retry with their idempotency keys, every execution still ends, and
// every invariant of TestReplicasOnPostgres holds.
//
//	BERTH_TEST_PG_RESTART=1 BERTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -race -count=1 -run TestPostgresRestartUnderLoad -v ./cmd/berth/
//
// It waits (up to two minutes) until no other database has clients, and
// skips if that does not happen.
func TestPostgresRestartUnderLoad(t *testing.T) {
	if os.Getenv(EnvPGRestart) != "1" {
		t.Skipf("restarts the local PostgreSQL cluster; set %s=1 to run it", EnvPGRestart)
	}
	ctl := pgctl(t)
	var down time.Duration // 0: restart; otherwise stop, wait this long, start
	if v := os.Getenv("BERTH_TEST_PG_DOWN"); v != "" {
		var err error
		if down, err = time.ParseDuration(v); err != nil {
			t.Fatalf("BERTH_TEST_PG_DOWN: %v", err)
		}
	}
	dbURL := testdb.URL(t, "postgres")
	const (
		replicas  = 2
		customers = 240
		price     = 9900
		restartAt = 60 // bookings accepted before the restart
	)
	c := startCluster(t, binPath, dbURL, replicas, "--lease", "24s", "--payment-failure-rate", "0.1",
		"--step-backoff", "50ms", "--step-attempts", "10")
	admin := c.token("ops", "Admin")
	seats := []int{100, 100}
	flights := make([]flight, len(seats))
	over := map[string]bool{}
	for i, n := range seats {
		flights[i] = c.createFlight(admin, 6000+i, n, price)
		over[flights[i].ID] = customers/len(seats) > n
	}
	subjects := make([]string, customers)
	for i := range subjects {
		subjects[i] = fmt.Sprintf("restart-customer-%03d", i)
	}
	tokens := c.tokens(subjects)
	waitForOtherClients(t, c.sql)

	var accepted atomic.Int64
	type restartResult struct {
		took      time.Duration // the restart command
		recovered time.Duration // from the restart's start to the first booking accepted after it
		down, up  time.Duration // when PostgreSQL stopped and started accepting connections again
		out       string
		err       error
		others    []string // other databases' clients seen just before: not restarted
	}
	restarted := make(chan restartResult, 1)
	var restartBegan atomic.Int64 // unix nanos
	var firstAfter atomic.Int64
	go func() {
		for accepted.Load() < restartAt {
			time.Sleep(5 * time.Millisecond)
		}
		if others, err := otherClients(c.sql); err != nil || len(others) > 0 {
			restarted <- restartResult{others: others, err: err}
			return
		}
		began := time.Now()
		restartBegan.Store(began.UnixNano())
		probe := probeDowntime(dbURL)
		var out []byte
		var err error
		if down == 0 {
			out, err = ctl("restart")
		} else if out, err = ctl("stop"); err == nil {
			time.Sleep(down)
			out, err = ctl("start")
		}
		r := restartResult{took: time.Since(began), out: strings.TrimSpace(string(out)), err: err}
		r.down, r.up = probe() // relative to its start, right after began
		deadline := time.Now().Add(60 * time.Second)
		for firstAfter.Load() == 0 && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		r.recovered = time.Duration(firstAfter.Load() - began.UnixNano())
		restarted <- r
	}()

	start := time.Now()
	var wg sync.WaitGroup
	work := make(chan int)
	var failed atomic.Int64
	for range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range work {
				began := time.Now()
				if _, err := c.bookOne(i%replicas, tokens[i], subjects[i], flights[i%len(flights)].ID, price); err != nil {
					failed.Add(1)
					t.Errorf("customer %d: %v", i, err)
					continue
				}
				accepted.Add(1)
				if rb := restartBegan.Load(); rb != 0 && began.UnixNano() > rb+int64(500*time.Millisecond) {
					firstAfter.CompareAndSwap(0, time.Now().UnixNano())
				}
				time.Sleep(50 * time.Millisecond) // keep bookings flowing across the restart
			}
		}()
	}
	for i := range customers {
		work <- i
	}
	close(work)
	wg.Wait()
	submitted := time.Since(start)
	r := <-restarted
	if len(r.others) > 0 {
		t.Skipf("not restarting PostgreSQL: other databases got clients meanwhile: %v", r.others)
	}
	if r.err != nil {
		t.Fatalf("restarting PostgreSQL: %v: %s", r.err, r.out)
	}
	settled := c.waitSettled(120 * time.Second)

	// Both replicas are up, ready, and listening again.
	for i, s := range c.reps {
		if s.cmd.ProcessState != nil {
			t.Fatalf("replica %d exited: %s", i, s.logs)
		}
		resp, err := http.Get(s.url + "/readyz")
		if err != nil || resp.StatusCode != http.StatusOK {
			t.Errorf("replica %d not ready after the restart: %v %v", i, resp, err)
		}
		if resp != nil {
			resp.Body.Close()
		}
	}
	eventually(t, "every store's LISTEN connection to come back", func() bool {
		var n int
		err := c.sql.QueryRowContext(context.Background(), `SELECT count(*) FROM pg_stat_activity
			WHERE datname = current_database() AND application_name = 'berth-listen' AND query LIKE 'LISTEN%'`).Scan(&n)
		return err == nil && n == replicas+1 // the replicas and the test's own store
	})
	o := c.checkInvariants(over)
	if o.bookings != customers || failed.Load() != 0 {
		t.Errorf("%d bookings in the database, %d requests failed; want %d and 0", o.bookings, failed.Load(), customers)
	}
	lost, stepErrs, txErrs := 0, 0, 0
	for _, s := range c.reps {
		lost += strings.Count(s.logs.String(), "LISTEN connection lost")
		stepErrs += strings.Count(s.logs.String(), "saga step could not be recorded")
		for _, line := range strings.Split(s.logs.String(), "\n") {
			if strings.Contains(line, "store: transaction failed") {
				if txErrs++; txErrs <= 3 {
					t.Logf("replica log: %.300s", line)
				}
			}
		}
	}
	t.Logf("replica logs: %d transactions failed for good (retries exhausted, or the connection lost during COMMIT)", txErrs)
	how := "restarted"
	if down > 0 {
		how = fmt.Sprintf("stopped for %s", down)
	}
	t.Logf("PostgreSQL %s after %d accepted bookings: the commands took %s; PostgreSQL refused connections from +%s to +%s; "+
		"first booking that began after +0.5s accepted at +%s; clients saw failures %s",
		how, restartAt, r.took.Round(time.Millisecond), r.down.Round(time.Millisecond), r.up.Round(time.Millisecond), r.recovered.Round(time.Millisecond),
		c.failureWindow(time.Unix(0, restartBegan.Load())))
	t.Logf("failed requests (sent again): %v", c.failures)
	t.Logf("%d bookings submitted in %s with %d requests sent again; all %d executions terminal %s after the first request",
		customers, submitted.Round(time.Millisecond), c.retried.Load(), o.executions, settled.Sub(start).Round(time.Millisecond))
	t.Logf("replica logs: %d LISTEN connections lost (and re-established), %d saga steps could not be recorded (resumed after their lease)", lost, stepErrs)
	t.Logf("%d confirmed, %d cancelled; captured %d, refunded %d, confirmed prices %d; time to confirmed p50 %s, p99 %s",
		o.confirmed, o.cancelled, o.captured, o.refunded, o.prices, percentile(o.confirmLatency, 50), percentile(o.confirmLatency, 99))
}

// probeDowntime connects to dsn every 10ms until stopped; stop returns how
// long after the probe began the first connection failed, and when
// connections succeeded again (zero if none failed).
func probeDowntime(dsn string) (stop func() (down, up time.Duration)) {
	began := time.Now()
	done := make(chan struct{})
	result := make(chan [2]time.Duration, 1)
	go func() {
		var down, up time.Duration
		for {
			select {
			case <-done:
				result <- [2]time.Duration{down, up}
				return
			default:
			}
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn, err := pgx.Connect(ctx, dsn)
			if err == nil {
				err = conn.Ping(ctx)
				conn.Close(ctx)
			}
			cancel()
			switch {
			case err != nil && down == 0:
				down = time.Since(began)
			case err == nil && down != 0 && up == 0:
				up = time.Since(began)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}()
	return func() (time.Duration, time.Duration) {
		// Let it see the server come back if the restart command returned
		// before the probe did.
		for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			conn, err := pgx.Connect(ctx, dsn)
			cancel()
			if err == nil {
				conn.Close(context.Background())
				break
			}
		}
		time.Sleep(50 * time.Millisecond)
		close(done)
		r := <-result
		return r[0], r[1]
	}
}

// pgctl returns a function that runs pg_ctlcluster on the one local
// cluster (in /etc/postgresql), or skips t if there is none.
func pgctl(t *testing.T) func(action string) ([]byte, error) {
	versions, err := os.ReadDir("/etc/postgresql")
	if err != nil || len(versions) != 1 {
		t.Skipf("no single local PostgreSQL cluster in /etc/postgresql (%v)", err)
	}
	if _, err := exec.LookPath("pg_ctlcluster"); err != nil {
		t.Skip("pg_ctlcluster not found")
	}
	return func(action string) ([]byte, error) {
		return exec.Command("pg_ctlcluster", "--skip-systemctl-redirect", versions[0].Name(), "main", action).CombinedOutput()
	}
}

// waitForOtherClients waits until no other database on the server has a
// client connected, so the restart disturbs no one else's work (other test
// runs): up to two minutes, then the test is skipped.
func waitForOtherClients(t *testing.T, db *sql.DB) {
	t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		others, err := otherClients(db)
		if err != nil {
			t.Fatal(err)
		}
		if len(others) == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Skipf("not restarting PostgreSQL: other databases have clients: %v", others)
		}
		time.Sleep(time.Second)
	}
}

// otherClients lists the other databases (than db's and the maintenance
// database) that have clients connected.
func otherClients(db *sql.DB) ([]string, error) {
	rows, err := db.Query(`SELECT DISTINCT datname FROM pg_stat_activity WHERE backend_type = 'client backend'
		AND datname IS DISTINCT FROM current_database() AND datname <> 'postgres'`)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var others []string
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return nil, err
		}
		others = append(others, name)
	}
	return others, rows.Err()
}
