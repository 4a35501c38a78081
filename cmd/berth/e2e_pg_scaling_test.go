package main

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth/internal/testdb"
)

// TestPostgresScaling measures booking throughput and time to confirmed
// with 1 and 3 replicas on one PostgreSQL database, for bookings spread over
// many flights and for bookings all on one flight (the hot row). It builds
// its own binary without the race detector and is a measurement, not a
// check, so it runs only when asked (docs/SCALING.md has its results):
//
//	BERTH_TEST_SCALING=1 BERTH_TEST_DATABASE_URL=postgres://postgres@127.0.0.1:5432/postgres?sslmode=disable \
//	  go test -count=1 -run TestPostgresScaling -v -timeout 30m ./cmd/berth/
//
// BERTH_TEST_SCALING_BOOKINGS (default 1200) and BERTH_TEST_SCALING_CLIENTS
// (default 32) size the load.
func TestPostgresScaling(t *testing.T) {
	if os.Getenv("BERTH_TEST_SCALING") != "1" {
		t.Skip("a measurement; set BERTH_TEST_SCALING=1 to run it")
	}
	bookings := envInt(t, "BERTH_TEST_SCALING_BOOKINGS", 1200)
	clients := envInt(t, "BERTH_TEST_SCALING_CLIENTS", 32)
	bin := filepath.Join(t.TempDir(), "berth")
	build := exec.Command("go", "build", "-o", bin, ".")
	build.Stdout, build.Stderr = os.Stderr, os.Stderr
	if err := build.Run(); err != nil {
		t.Fatal(err)
	}
	type result struct {
		name                 string
		rate, accepted       float64
		p50, p99             time.Duration
		confirmed, cancelled int
	}
	var results []result
	for _, flights := range []int{24, 1} {
		for _, replicas := range []int{1, 3} {
			name := fmt.Sprintf("replicas=%d/flights=%d", replicas, flights)
			t.Run(name, func(t *testing.T) {
				load0 := loadavg()
				c := startCluster(t, bin, testdb.URL(t, "postgres"), replicas, "--max-conns", "16", "--workers", "32")
				admin := c.token("ops", "Admin")
				fs := make([]flight, flights)
				for i := range fs {
					fs[i] = c.createFlight(admin, 7000+i, bookings, 5000)
				}
				subjects := make([]string, bookings)
				for i := range subjects {
					subjects[i] = fmt.Sprintf("load-%05d", i)
				}
				tokens := c.tokens(subjects)
				commits0 := c.commits()
				berth0, pg0 := c.cpu()
				var wg sync.WaitGroup
				work := make(chan int)
				var failed atomic.Int64
				start := time.Now()
				for range clients {
					wg.Add(1)
					go func() {
						defer wg.Done()
						for i := range work {
							if _, err := c.bookOne(i%replicas, tokens[i], subjects[i], fs[i%flights].ID, 5000); err != nil {
								failed.Add(1)
								t.Errorf("booking %d: %v", i, err)
							}
						}
					}()
				}
				for i := range bookings {
					work <- i
				}
				close(work)
				wg.Wait()
				submitted := time.Since(start)
				settled := c.waitSettled(10 * time.Minute).Sub(start)
				berth1, pg1 := c.cpu()
				time.Sleep(1500 * time.Millisecond) // PostgreSQL publishes statistics within a second
				perBooking := float64(c.commits()-commits0) / float64(bookings)
				o := c.checkInvariants(nil)
				r := result{name: name, rate: float64(bookings) / settled.Seconds(), accepted: float64(bookings) / submitted.Seconds(),
					p50: percentile(o.confirmLatency, 50), p99: percentile(o.confirmLatency, 99), confirmed: o.confirmed, cancelled: o.cancelled}
				results = append(results, r)
				t.Logf("%s: %d bookings by %d clients: accepted in %s (%.0f/s), all confirmed after %s (%.0f/s); time to confirmed p50 %s p99 %s; %d confirmed, %d cancelled, %d requests sent again",
					name, bookings, clients, submitted.Round(time.Millisecond), r.accepted, settled.Round(time.Millisecond), r.rate, r.p50, r.p99,
					o.confirmed, o.cancelled, c.retried.Load())
				t.Logf("%.1f committed transactions per booking (pg_stat_database.xact_commit, all replicas); CPU per booking: berth %s, PostgreSQL backends %s",
					perBooking, ((berth1 - berth0) / time.Duration(bookings)).Round(10*time.Microsecond), ((pg1 - pg0) / time.Duration(bookings)).Round(10*time.Microsecond))
				t.Logf("load average (1 min) before %s, after %s on %d CPUs: other work on the machine skews these numbers", load0, loadavg(), runtime.NumCPU())
			})
		}
	}
	t.Logf("| scenario | requests accepted/s | bookings confirmed/s | p50 to confirmed | p99 to confirmed |")
	for _, r := range results {
		t.Logf("| %s | %.0f | %.0f | %s | %s |", r.name, r.accepted, r.rate, r.p50, r.p99)
	}
}

// loadavg returns the 1-minute load average.
func loadavg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return "?"
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return "?"
	}
	return f[0]
}

// cpu returns the CPU time used so far by the replicas and by the
// PostgreSQL backends serving this database (from /proc; clock ticks of
// 10ms). Backends that ended are not counted: the replicas' pools keep
// theirs for the whole run.
func (c *cluster) cpu() (replicas, backends time.Duration) {
	for _, r := range c.reps {
		replicas += procCPU(r.cmd.Process.Pid)
	}
	rows, err := c.sql.Query(`SELECT pid FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()`)
	if err != nil {
		c.t.Fatal(err)
	}
	defer rows.Close()
	for rows.Next() {
		var pid int
		if err := rows.Scan(&pid); err == nil {
			backends += procCPU(pid)
		}
	}
	return replicas, backends
}

// procCPU returns the user+system CPU time of process pid (0 if unknown).
func procCPU(pid int) time.Duration {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	if len(f) < 13 {
		return 0
	}
	utime, _ := strconv.ParseInt(f[11], 10, 64) // fields 14 and 15 of stat(5)
	stime, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(utime+stime) * 10 * time.Millisecond
}

// commits returns the database's committed transactions so far.
func (c *cluster) commits() int64 {
	var n int64
	if err := c.sql.QueryRow(`SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()`).Scan(&n); err != nil {
		c.t.Fatal(err)
	}
	return n
}

func envInt(t *testing.T, name string, def int) int {
	v := os.Getenv(name)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n <= 0 {
		t.Fatalf("%s: want a positive integer, got %q", name, v)
	}
	return n
}
