package bench

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
)

// Report is everything a run measured. The JSON keys accepted_per_sec,
// confirmed_per_sec, p50_confirm_ms, p99_confirm_ms, oversold,
// raw_tx_per_sec, ratio and rss_mb are the stable summary.
type Report struct {
	Scenario    string    `json:"scenario"`
	Database    string    `json:"database"`
	Synchronous string    `json:"synchronous,omitempty"`
	Target      string    `json:"target"`
	Embedded    bool      `json:"embedded"`
	StartedAt   time.Time `json:"started_at"`
	Machine     Machine   `json:"machine"`
	Users       int       `json:"users"`
	InFlight    int       `json:"in_flight_per_user"`
	Seats       int       `json:"seats_per_flight"`
	Flights     int       `json:"flights"`
	// LoadSeconds is from the first request to the last customer stopping.
	LoadSeconds float64 `json:"load_seconds"`

	// The summary.
	AcceptedPerSec  float64 `json:"accepted_per_sec"`  // processBooking answered with a booking, per second
	ConfirmedPerSec float64 `json:"confirmed_per_sec"` // bookings seen CONFIRMED per second (saga throughput)
	P50ConfirmMs    float64 `json:"p50_confirm_ms"`    // time to CONFIRMED, from the processBooking request
	P95ConfirmMs    float64 `json:"p95_confirm_ms"`
	P99ConfirmMs    float64 `json:"p99_confirm_ms"`
	MaxConfirmMs    float64 `json:"max_confirm_ms"`
	P50BookMs       float64 `json:"p50_process_booking_ms"`
	P99BookMs       float64 `json:"p99_process_booking_ms"`
	Oversold        int     `json:"oversold"`
	RawTxPerSec     float64 `json:"raw_tx_per_sec"` // the calibration: guarded single-row UPDATE transactions per second
	Ratio           float64 `json:"ratio"`          // confirmed_per_sec ÷ raw_tx_per_sec
	RSSMB           float64 `json:"rss_mb"`         // peak server RSS sampled during the run
	// RSSPeakMB is the server's VmHWM (peak over its life), when known.
	RSSPeakMB                float64 `json:"rss_peak_mb,omitempty"`
	RSSIncludesLoadGenerator bool    `json:"rss_includes_load_generator,omitempty"`

	// Counts.
	Requested int `json:"booking_requests"`
	Accepted  int `json:"accepted"`
	Confirmed int `json:"confirmed"`
	Cancelled int `json:"cancelled"`
	// CancelledWithSeatsLeft counts, in a flash sale, bookings cancelled
	// while the flight still had seats (not sold out: a failure).
	CancelledWithSeatsLeft int `json:"cancelled_with_seats_left"`
	Unfinished             int `json:"unfinished"`
	// Wait is how customers waited for outcomes: long (getBooking
	// long-polls) or poll.
	Wait            string  `json:"wait"`
	Polls           int     `json:"get_booking_polls"` // getBooking requests (polls or long-polls)
	PollsPerBooking float64 `json:"polls_per_booking"`
	PollMax         string  `json:"poll_max"`
	// Requests are the customers' GraphQL requests during the load
	// (createCharge, processBooking, getBooking and the flash sale's
	// sold-out checks); RequestsPerBooking, per accepted booking.
	Requests           int            `json:"requests"`
	RequestsPerBooking float64        `json:"requests_per_booking"`
	Failures           map[string]int `json:"failures"` // "operation:CODE" → count

	// Latencies in milliseconds.
	CreateCharge    Summary `json:"create_charge_ms"`
	ProcessBooking  Summary `json:"process_booking_ms"`
	TimeToConfirmed Summary `json:"time_to_confirmed_ms"`
	// ServerTimeToConfirmed is from the database's timestamps (no polling
	// error): the booking's CONFIRMED commit minus its creation.
	ServerTimeToConfirmed *Summary `json:"server_time_to_confirmed_ms,omitempty"`

	Calibration *Calibration `json:"calibration,omitempty"`
	// CommitsPerBooking is PostgreSQL's committed transactions during the
	// run per accepted booking (every request, saga step, job and poll).
	CommitsPerBooking float64 `json:"commits_per_booking,omitempty"`
	// StoreUpdatesPerBooking and StoreCommitsPerBooking are the server's
	// read-write transactions per accepted booking and the database COMMITs
	// that committed them (from /metrics; fewer COMMITs than transactions
	// when SQLite's group commit batched them).
	StoreUpdatesPerBooking float64 `json:"store_updates_per_booking,omitempty"`
	StoreCommitsPerBooking float64 `json:"store_commits_per_booking,omitempty"`

	// The server before the load and after it (once idle).
	Before                serverStats `json:"server_before"`
	After                 serverStats `json:"server_after"`
	ServerPID             int         `json:"server_pid,omitempty"`
	ServerCPUSeconds      float64     `json:"server_cpu_seconds"`
	ServerCPUMsPerBooking float64     `json:"server_cpu_ms_per_booking"`
	ClientCPUSeconds      float64     `json:"client_cpu_seconds"`

	Invariants    Invariants `json:"invariants"`
	SubjectPrefix string     `json:"subject_prefix"`
	Series        []Second   `json:"series"`
	Notes         []string   `json:"notes,omitempty"`
	ServerLogTail string     `json:"server_log_tail,omitempty"`
}

// Machine is where the benchmark ran.
type Machine struct {
	CPU       string `json:"cpu"`
	CPUs      int    `json:"cpus"`
	MemoryMB  int    `json:"memory_mb"`
	OS        string `json:"os"`
	Arch      string `json:"arch"`
	GoVersion string `json:"go_version"`
}

// Invariants is the verdict on seats and money.
type Invariants struct {
	OK bool `json:"ok"`
	// By the API: the flights' seatCapacity went down by exactly the
	// bookings customers saw CONFIRMED.
	APISeatsOK  bool     `json:"api_seats_ok"`
	APISold     int      `json:"api_sold"`
	APICapacity int      `json:"api_capacity"`
	DB          *DBCheck `json:"database,omitempty"`
	Problems    []string `json:"problems,omitempty"`
}

// Second is one second of the run.
type Second struct {
	T            int     `json:"t"`
	Accepted     int     `json:"accepted"`
	Confirmed    int     `json:"confirmed"`
	Cancelled    int     `json:"cancelled"`
	P50ConfirmMs float64 `json:"p50_confirm_ms"`
	P99ConfirmMs float64 `json:"p99_confirm_ms"`
	RSSMB        float64 `json:"rss_mb"`
}

func newReport(cfg Config) *Report {
	r := &Report{Scenario: cfg.Scenario, Embedded: cfg.Target == "", StartedAt: time.Now().UTC().Truncate(time.Second),
		Machine: machineInfo(), Users: cfg.Users, InFlight: cfg.InFlight, Seats: cfg.Seats, Failures: map[string]int{},
		PollMax: cfg.PollMax.String(), Wait: cfg.Wait}
	if !strings.HasPrefix(cfg.Database, "postgres") {
		r.Synchronous = cfg.Synchronous
	}
	return r
}

// WriteJSON writes the report as indented JSON to path.
func (r *Report) WriteJSON(path string) error {
	b, err := json.MarshalIndent(r, "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(path, append(b, '\n'), 0o644)
}

// WriteText prints the report for people.
func (r *Report) WriteText(w io.Writer) {
	p := func(format string, args ...any) { fmt.Fprintf(w, format+"\n", args...) }
	db := r.Database
	if r.Synchronous != "" && db == "sqlite" {
		db += " (synchronous=" + r.Synchronous + ", WAL, one writer)"
	}
	p("berth bench — %s on %s, %s", r.Scenario, db, r.Target)
	p("  %d customers (%d booking(s) in flight each), %d flight(s) × %d seats; load %.1fs; %s, %d CPUs, %s",
		r.Users, r.InFlight, r.Flights, r.Seats, r.LoadSeconds, r.Machine.CPU, r.Machine.CPUs, r.Machine.GoVersion)
	p("")
	tw := tabwriter.NewWriter(w, 2, 4, 2, ' ', 0)
	fmt.Fprintf(tw, "  booking requests accepted\t%d\t%.1f/s\n", r.Accepted, r.AcceptedPerSec)
	fmt.Fprintf(tw, "  confirmed bookings\t%d\t%.1f/s\t(saga throughput)\n", r.Confirmed, r.ConfirmedPerSec)
	fmt.Fprintf(tw, "  cancelled bookings\t%d\t\t", r.Cancelled)
	if r.Scenario == FlashSale {
		fmt.Fprintf(tw, "(sold out; %d while seats were left)", r.CancelledWithSeatsLeft)
	}
	fmt.Fprintln(tw)
	if r.Unfinished > 0 {
		fmt.Fprintf(tw, "  no outcome in time\t%d\t\t\n", r.Unfinished)
	}
	fmt.Fprintf(tw, "  oversold seats\t%d\t\t(must be 0)\n", r.Oversold)
	tw.Flush()
	p("")
	tw = tabwriter.NewWriter(w, 2, 4, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "  latency (ms)\tp50\tp95\tp99\tmax\tcount\t")
	row := func(name string, s Summary) {
		fmt.Fprintf(tw, "  %s\t%.1f\t%.1f\t%.1f\t%.1f\t%d\t\n", name, s.P50, s.P95, s.P99, s.Max, s.Count)
	}
	row("createCharge", r.CreateCharge)
	row("processBooking", r.ProcessBooking)
	row("time to CONFIRMED", r.TimeToConfirmed)
	if r.ServerTimeToConfirmed != nil {
		row("  by the database", *r.ServerTimeToConfirmed)
	}
	tw.Flush()
	if r.Wait == WaitPoll {
		p("  (time to CONFIRMED as customers see it: getBooking polled from 5ms, growing to %s or a fifth of the wait; %.1f polls per booking)",
			r.PollMax, r.PollsPerBooking)
	} else {
		p("  (time to CONFIRMED as customers see it: getBooking(waitFor: [CONFIRMED, CANCELLED]) long-polls; %.1f per booking)", r.PollsPerBooking)
	}
	p("  requests per booking: %.1f (%d GraphQL requests of customers ÷ accepted bookings: createCharge, processBooking, getBooking, sold-out checks)",
		r.RequestsPerBooking, r.Requests)
	if len(r.Failures) > 0 {
		p("")
		p("  failures by code:")
		keys := make([]string, 0, len(r.Failures))
		for k := range r.Failures {
			keys = append(keys, k)
		}
		slices.Sort(keys)
		for _, k := range keys {
			p("    %-40s %d", k, r.Failures[k])
		}
	} else {
		p("  failures: none")
	}
	p("")
	if c := r.Calibration; c != nil {
		p("  calibration: guarded single-row UPDATE transaction on %s, one goroutine: %.0f tx/s", c.Dialect, c.TxPerSec)
		if c.Conns > 0 {
			p("               %d connections, one row: %.0f tx/s; %d connections, one row each: %.0f tx/s",
				c.Conns, c.SameRowPerSec, c.Conns, c.DistinctRowsPerSec)
		}
		p("  confirmed/s ÷ raw rate = %.3f  (%.1f transactions of the raw kind per confirmed booking's time)", r.Ratio, safeDiv(1, r.Ratio))
	}
	if r.StoreUpdatesPerBooking > 0 {
		p("  server transactions per accepted booking: %.2f read-write, committed by %.2f database COMMITs (fsyncs on SQLite)", r.StoreUpdatesPerBooking, r.StoreCommitsPerBooking)
	}
	if r.CommitsPerBooking > 0 {
		p("  PostgreSQL commits per accepted booking: %.1f (requests, saga steps, jobs and reads that commit)", r.CommitsPerBooking)
	}
	mem := fmt.Sprintf("  server: RSS peak %.1f MB", r.RSSMB)
	if r.RSSPeakMB > 0 {
		mem += fmt.Sprintf(" (VmHWM %.1f MB)", r.RSSPeakMB)
	}
	if r.RSSIncludesLoadGenerator {
		mem += " — in-process: includes the load generator"
	}
	p("%s; goroutines %d → %d, open fds %d → %d (before → after the run; fds include the database pool's idle connections)", mem, r.Before.Goroutines, r.After.Goroutines,
		r.Before.OpenFDs, r.After.OpenFDs)
	if r.RSSIncludesLoadGenerator {
		p("  CPU: %.1fs for server and load generator together (one process)", r.ServerCPUSeconds)
	} else {
		p("  CPU: server %.1fs (%.2f ms per booking), load generator %.1fs", r.ServerCPUSeconds, r.ServerCPUMsPerBooking, r.ClientCPUSeconds)
	}
	p("")
	inv := r.Invariants
	verdict := "OK"
	if !inv.OK {
		verdict = "FAILED"
	}
	p("  invariants: %s", verdict)
	p("    seats (API): seatCapacity went down by %d of %d, customers saw %d CONFIRMED", inv.APISold, inv.APICapacity, r.Confirmed)
	if d := inv.DB; d != nil {
		p("    seats (database): capacity %d, available %d, held %d, confirmed %d, cancelled %d, unconfirmed %d",
			d.Capacity, d.Available, d.HeldSeats, d.Confirmed, d.Cancelled, d.Unconfirmed)
		p("    money (database): captured %d − refunded %d = %d; confirmed bookings' price %d; charges %v",
			d.Captured, d.Refunded, d.Captured-d.Refunded, d.ConfirmedPrice, d.Charges)
		p("    rows per booking: %.1f history, %.1f events, %.1f executions", d.HistoryPerBooking, d.EventsPerBooking, d.ExecutionsPerBooking)
	}
	for _, pr := range inv.Problems {
		p("    ! %s", pr)
	}
	for _, n := range r.Notes {
		p("  note: %s", n)
	}
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}
