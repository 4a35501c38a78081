package bench

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/berthhq/berth/auth"
	"github.com/schollz/progressbar/v3"
)

// Scenarios.
const (
	// FlashSale is one flight that every customer books until it is sold
	// out: all the contention is on one row.
	FlashSale = "flash-sale"
	// Spread is one flight per customer (or Flights flights), booked for
	// Duration: no contention on capacity.
	Spread = "spread"
)

// How customers wait for a booking's outcome (Config.Wait).
const (
	// WaitLong sends one getBooking(waitFor: [CONFIRMED, CANCELLED])
	// long-poll, sent again if it answers at its timeout.
	WaitLong = "long"
	// WaitPoll polls getBooking, as the original front end does.
	WaitPoll = "poll"
)

// longPollMs is the timeoutMs of the customers' long-polls: the server's
// maximum (25s), so that a slow outcome costs few requests.
const longPollMs = 25000

// Config configures a benchmark run. Zero values take the defaults.
type Config struct {
	Scenario string // FlashSale (default) or Spread
	// Target is the base URL of a running berth server. Empty: Start
	// starts one.
	Target string
	// Start starts the embedded server when Target is empty.
	Start Starter
	// DataDir is, with Target, the server's data directory (its token
	// signing key mints the benchmark's tokens). Embedded: empty means a
	// temporary directory, removed afterwards.
	DataDir string
	// Database is the database URL. Embedded: empty means SQLite in the data
	// directory. With Target it is optional and enables the calibration and
	// the checks in the database.
	Database string
	// Synchronous is SQLite's synchronous setting for the embedded server
	// and the calibration. Defaults to FULL (berth's default).
	Synchronous string
	// ServeArgs are extra flags for the embedded `berth serve`.
	ServeArgs []string

	Users    int           // virtual customers. Defaults to 64.
	Seats    int           // seats of the flash-sale flight, and of each spread flight. Defaults to 5000.
	Flights  int           // spread: flights. Defaults to Users.
	Duration time.Duration // spread: how long customers keep booking. Defaults to 30s.
	// MaxTime bounds a flash sale that does not sell out. Defaults to 10m.
	MaxTime time.Duration
	// InFlight is how many bookings a customer may wait for at once: 1
	// (default) waits for each booking's outcome before making the next.
	InFlight int
	// Wait is how customers wait for a booking's outcome: WaitLong
	// (default) or WaitPoll.
	Wait string
	// PollMax caps the interval of getBooking polls while a customer waits
	// for the outcome: they start at 5ms and grow by half up to PollMax, or
	// to a fifth of the time waited once that is longer. Defaults to 50ms:
	// customers see the outcome at most 50ms or 20% late, and the polls
	// (which the server pays for like any request) stay few when it is slow.
	// The database's timestamps give the exact time to CONFIRMED as well.
	// With WaitLong, it caps the pause before asking again when a long-poll
	// answers early without an outcome (an error, or the server's bound on
	// waiting requests).
	PollMax time.Duration
	// WatchTimeout is how long a customer waits for a booking's outcome.
	// Defaults to 2m.
	WatchTimeout time.Duration
	Price        int64  // ticket price in minor units. Defaults to 10000.
	Currency     string // defaults to EUR.

	// Calibrate is how long each calibration measurement runs. Zero means
	// 3s; negative skips the calibration.
	Calibrate time.Duration
	// CalibrateConns is the PostgreSQL calibration's parallelism. Defaults
	// to 8, berth's default pool.
	CalibrateConns int

	// Progress receives a progress bar (a terminal); nil for none.
	Progress io.Writer
	// Log receives status lines; nil for none.
	Log io.Writer
}

func (c *Config) defaults() error {
	if c.Scenario == "" {
		c.Scenario = FlashSale
	}
	if c.Scenario != FlashSale && c.Scenario != Spread {
		return fmt.Errorf("bench: scenario must be %s or %s, not %q", FlashSale, Spread, c.Scenario)
	}
	if c.Wait == "" {
		c.Wait = WaitLong
	}
	if c.Wait != WaitLong && c.Wait != WaitPoll {
		return fmt.Errorf("bench: wait must be %s or %s, not %q", WaitLong, WaitPoll, c.Wait)
	}
	if c.Target == "" && c.Start == nil {
		return errors.New("bench: a target URL or a starter is required")
	}
	if c.Target != "" && c.DataDir == "" {
		return errors.New("bench: with a target, the server's data directory is required (its key mints the tokens)")
	}
	if c.Synchronous == "" {
		c.Synchronous = "FULL"
	}
	c.Synchronous = strings.ToUpper(c.Synchronous)
	def := func(v *int, d int) {
		if *v <= 0 {
			*v = d
		}
	}
	def(&c.Users, 64)
	def(&c.Seats, 5000)
	def(&c.Flights, c.Users)
	def(&c.InFlight, 1)
	def(&c.CalibrateConns, 8)
	if c.Seats > 100000 {
		return errors.New("bench: a flight has at most 100000 seats")
	}
	if c.Duration <= 0 {
		c.Duration = 30 * time.Second
	}
	if c.MaxTime <= 0 {
		c.MaxTime = 10 * time.Minute
	}
	if c.PollMax <= 0 {
		c.PollMax = 50 * time.Millisecond
	}
	if c.WatchTimeout <= 0 {
		c.WatchTimeout = 2 * time.Minute
	}
	if c.Price <= 0 {
		c.Price = 10000
	}
	if c.Currency == "" {
		c.Currency = "EUR"
	}
	if c.Calibrate == 0 {
		c.Calibrate = 3 * time.Second
	}
	if c.Log == nil {
		c.Log = io.Discard
	}
	return nil
}

// kinds of samples.
const (
	kCharge = iota
	kBook
	kConfirm
	kCancel
)

// sample is one finished operation: when (since the load started), what,
// how long it took.
type sample struct {
	at   time.Duration
	kind uint8
	lat  time.Duration
}

// runner holds the state of one load run.
type runner struct {
	cfg     Config
	c       *client
	admin   string
	flights []*flightData
	t0      time.Time

	stop     atomic.Bool   // no new bookings
	hard     chan struct{} // closed: give up waiting for outcomes
	hardOnce sync.Once
	// hardCtx is cancelled with hard: it ends long-polls in progress.
	hardCtx    context.Context
	cancelHard context.CancelFunc

	requested, accepted, confirmed, cancelled, unfinished, polls atomic.Int64
	perFlight                                                    []atomic.Int64 // confirmations seen per flight
	cancelledEarly                                               atomic.Int64   // flash sale: cancelled while seats were left
	lastSoldOutCheck                                             atomic.Int64

	mu       sync.Mutex
	samples  []sample
	failures map[string]int
	gaveUp   int
	notes    []string
}

func (r *runner) note(s string) {
	r.mu.Lock()
	r.notes = append(r.notes, s)
	r.mu.Unlock()
}

func (r *runner) record(kind uint8, at time.Time, lat time.Duration) {
	r.mu.Lock()
	r.samples = append(r.samples, sample{at: at.Sub(r.t0), kind: kind, lat: lat})
	r.mu.Unlock()
}

func (r *runner) fail(op string, err error) {
	r.mu.Lock()
	r.failures[op+":"+codeOf(err)]++
	r.mu.Unlock()
}

func (r *runner) hardStop() {
	r.hardOnce.Do(func() {
		close(r.hard)
		r.cancelHard()
	})
}

// user is one virtual customer's loop.
func (r *runner) user(ctx context.Context, token string, flight int) {
	var wg sync.WaitGroup
	defer wg.Wait()
	slots := make(chan struct{}, r.cfg.InFlight)
	errs := 0
	for !r.stop.Load() {
		select {
		case slots <- struct{}{}:
		case <-r.hard:
			return
		}
		if r.stop.Load() {
			<-slots
			break
		}
		id, start, err := r.book(ctx, token, flight)
		if err != nil {
			<-slots
			if r.stop.Load() {
				return
			}
			errs++
			// A business error may pass; a server that does not answer
			// will not: give up sooner.
			if errs >= 100 || (errs >= 20 && codeOf(err) == "NETWORK") {
				r.mu.Lock()
				r.gaveUp++
				r.mu.Unlock()
				return
			}
			select {
			case <-time.After(min(time.Duration(errs)*10*time.Millisecond, time.Second)):
			case <-r.hard:
				return
			}
			continue
		}
		errs = 0
		if r.cfg.InFlight == 1 {
			r.watch(ctx, token, id, flight, start)
			<-slots
			continue
		}
		wg.Go(func() {
			defer func() { <-slots }()
			r.watch(ctx, token, id, flight, start)
		})
	}
}

// book pays and books: createCharge, then processBooking. It returns the
// booking id and when the processBooking request was sent.
func (r *runner) book(ctx context.Context, token string, flight int) (string, time.Time, error) {
	f := r.flights[flight]
	t := time.Now()
	ch, err := r.c.createCharge(ctx, token, f.TicketPrice, f.TicketCurrency)
	if err != nil {
		r.fail("createCharge", err)
		return "", t, err
	}
	r.record(kCharge, time.Now(), time.Since(t))
	start := time.Now()
	r.requested.Add(1)
	id, err := r.c.processBooking(ctx, token, f.ID, ch)
	done := time.Now()
	if err != nil {
		r.fail("processBooking", err)
		return "", start, err
	}
	r.accepted.Add(1)
	r.record(kBook, done, done.Sub(start))
	return id, start, nil
}

// watch waits for the booking's outcome as Config.Wait says.
func (r *runner) watch(ctx context.Context, token, id string, flight int, start time.Time) {
	if r.cfg.Wait == WaitPoll {
		r.poll(ctx, token, id, flight, start)
		return
	}
	r.longPoll(ctx, token, id, flight, start)
}

// poll polls the booking until it is CONFIRMED or CANCELLED, as the
// original front end does, with intervals from 5ms growing to PollMax.
func (r *runner) poll(ctx context.Context, token, id string, flight int, start time.Time) {
	delay := 5 * time.Millisecond
	deadline := start.Add(r.cfg.WatchTimeout)
	netErrs := 0
	timer := time.NewTimer(delay)
	defer timer.Stop()
	for {
		select {
		case <-timer.C:
		case <-r.hard:
			r.unfinished.Add(1)
			return
		}
		st, err := r.c.bookingStatus(ctx, token, id)
		r.polls.Add(1)
		now := time.Now()
		if !r.answered(err, &netErrs) {
			return
		}
		if r.outcome(ctx, st, flight, start, now) || r.late(now, deadline) {
			return
		}
		// Grow by half up to PollMax, or a fifth of the time waited so far
		// once that is longer: 20% resolution, and a logarithmic number of
		// polls when the server is slow (polls cost it like any request).
		delay = min(delay*3/2, max(r.cfg.PollMax, now.Sub(start)/5))
		timer.Reset(delay)
	}
}

// longPoll waits for the outcome with getBooking(waitFor: [CONFIRMED,
// CANCELLED]): the server answers when the booking has one, so customers
// see it when it happens, with one request (another after each 25s
// timeout). An answer that comes early without an outcome (an error, or
// the server's bound on waiting requests) is followed by a pause from 5ms
// growing to PollMax.
func (r *runner) longPoll(ctx context.Context, token, id string, flight int, start time.Time) {
	deadline := start.Add(r.cfg.WatchTimeout)
	netErrs := 0
	pause := 5 * time.Millisecond
	for {
		sent := time.Now()
		st, err := r.c.waitBooking(r.hardCtx, token, id, longPollMs)
		r.polls.Add(1)
		now := time.Now()
		if err != nil && r.hardCtx.Err() != nil {
			r.unfinished.Add(1)
			return
		}
		if !r.answered(err, &netErrs) {
			return
		}
		if r.outcome(ctx, st, flight, start, now) || r.late(now, deadline) {
			return
		}
		if now.Sub(sent) >= longPollMs*time.Millisecond/2 {
			pause = 5 * time.Millisecond // a timeout: ask again at once
			continue
		}
		select {
		case <-time.After(pause):
		case <-r.hard:
			r.unfinished.Add(1)
			return
		}
		pause = min(pause*3/2, r.cfg.PollMax)
	}
}

// answered records a failed getBooking; it returns false, the booking
// unfinished, after 20 in a row without an answer from the server.
func (r *runner) answered(err error, netErrs *int) bool {
	if err == nil {
		*netErrs = 0
		return true
	}
	r.fail("getBooking", err)
	if codeOf(err) != "NETWORK" {
		*netErrs = 0
		return true
	}
	if *netErrs++; *netErrs >= 20 {
		r.unfinished.Add(1)
		return false
	}
	return true
}

// outcome records a booking seen CONFIRMED or CANCELLED at now and
// reports whether st is one of them.
func (r *runner) outcome(ctx context.Context, st string, flight int, start, now time.Time) bool {
	switch st {
	case "CONFIRMED":
		r.confirmed.Add(1)
		r.record(kConfirm, now, now.Sub(start))
		if n := r.perFlight[flight].Add(1); r.cfg.Scenario == FlashSale && int(n) >= r.cfg.Seats {
			r.stop.Store(true)
		}
		return true
	case "CANCELLED", "EXPIRED":
		r.cancelled.Add(1)
		r.record(kCancel, now, now.Sub(start))
		if r.cfg.Scenario == FlashSale {
			r.checkSoldOut(ctx)
		}
		return true
	}
	return false
}

// late records a booking without an outcome past its deadline.
func (r *runner) late(now, deadline time.Time) bool {
	if !now.After(deadline) {
		return false
	}
	r.unfinished.Add(1)
	r.fail("watch", &OpError{Code: "TIMEOUT", Message: "no outcome within " + r.cfg.WatchTimeout.String()})
	return true
}

// checkSoldOut stops the flash sale once the flight has no seats left. A
// cancellation while seats are left (not a sold-out) is counted.
func (r *runner) checkSoldOut(ctx context.Context) {
	if r.stop.Load() {
		return
	}
	now := time.Now().UnixNano()
	last := r.lastSoldOutCheck.Load()
	if now-last < int64(50*time.Millisecond) || !r.lastSoldOutCheck.CompareAndSwap(last, now) {
		return
	}
	f, err := r.c.getFlight(ctx, r.admin, r.flights[0].ID)
	if err != nil {
		r.fail("getFlight", err)
		return
	}
	if f.SeatCapacity == 0 {
		r.stop.Store(true)
	} else {
		r.cancelledEarly.Add(1)
	}
}

// Run runs the benchmark described by cfg and returns its report.
func Run(ctx context.Context, cfg Config) (*Report, error) {
	if err := cfg.defaults(); err != nil {
		return nil, err
	}
	rep := newReport(cfg)
	logf := func(format string, args ...any) { fmt.Fprintf(cfg.Log, format+"\n", args...) }

	// The data directory and the database.
	dataDir, dbURL := cfg.DataDir, cfg.Database
	if cfg.Target == "" && dataDir == "" {
		d, err := os.MkdirTemp("", "berth-bench-")
		if err != nil {
			return nil, err
		}
		defer os.RemoveAll(d)
		dataDir = d
	}
	if cfg.Target == "" && dbURL == "" {
		dbURL = "sqlite:" + filepath.Join(dataDir, "berth.db")
	}
	rep.Database = dialectOf(dbURL)
	if rep.Database != "sqlite" {
		rep.Synchronous = ""
	}

	// The physical limit, measured first, on an idle machine.
	if cfg.Calibrate > 0 && dbURL != "" {
		dir := dataDir
		if cfg.Target != "" {
			dir = ""
		}
		logf("calibrating: guarded single-row UPDATE transactions on %s for %s…", rep.Database, cfg.Calibrate)
		cal, err := Calibrate(ctx, dbURL, cfg.Synchronous, cfg.Calibrate, cfg.CalibrateConns, dir)
		if err != nil {
			return nil, err
		}
		rep.Calibration = cal
		rep.RawTxPerSec = cal.TxPerSec
	} else if cfg.Calibrate > 0 {
		rep.Notes = append(rep.Notes, "no calibration: pass --database with --target to measure the database's raw rate")
	}

	// The server.
	base := cfg.Target
	var srv *Server
	if base == "" {
		args := []string{"--addr", "127.0.0.1:0", "--data", dataDir, "--log-level", "warn", "--synchronous", cfg.Synchronous}
		if cfg.Database != "" {
			args = append(args, "--database", cfg.Database)
		}
		args = append(args, cfg.ServeArgs...)
		logf("starting berth serve %s", strings.Join(redactArgs(args), " "))
		var err error
		if srv, err = cfg.Start(ctx, args); err != nil {
			return nil, err
		}
		stopped := false
		stopServer := func() {
			if !stopped {
				stopped = true
				if err := srv.Stop(); err != nil {
					rep.Notes = append(rep.Notes, err.Error())
				}
			}
		}
		defer stopServer()
		base = srv.URL
		rep.Target = base
		rep.ServerPID = srv.PID
		rep.RSSIncludesLoadGenerator = srv.InProcess
		defer func() {
			if srv.Logs != nil && !rep.Invariants.OK {
				rep.ServerLogTail = tail(srv.Logs(), 4000)
			}
		}()
		err = runLoad(ctx, cfg, rep, base, dataDir, dbURL, srv, stopServer, logf)
		return rep, err
	}
	rep.Target = base
	err := runLoad(ctx, cfg, rep, base, dataDir, dbURL, nil, func() {}, logf)
	return rep, err
}

func dialectOf(dbURL string) string {
	switch {
	case dbURL == "":
		return "unknown"
	case strings.HasPrefix(dbURL, "postgres"):
		return "postgres"
	}
	return "sqlite"
}

// redactArgs hides a database password in logged arguments.
func redactArgs(args []string) []string {
	out := slices.Clone(args)
	for i, a := range out {
		if j := strings.Index(a, "://"); j > 0 {
			if k := strings.Index(a, "@"); k > j {
				if c := strings.Index(a[j+3:k], ":"); c >= 0 {
					out[i] = a[:j+3+c] + ":***" + a[k:]
				}
			}
		}
	}
	return out
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return "…" + s[len(s)-n:]
}

// runLoad sets up customers and flights on the server at base, drives the
// load, waits for the sagas, then checks the invariants.
func runLoad(ctx context.Context, cfg Config, rep *Report, base, dataDir, dbURL string, srv *Server, stopServer func(), logf func(string, ...any)) error {
	issuer, err := auth.LoadOrCreateIssuer(dataDir, "berth", "berth")
	if err != nil {
		return fmt.Errorf("bench: the token key in %s: %w", dataDir, err)
	}
	prefix := "bench-" + randomHex(4) + "-"
	rep.SubjectPrefix = prefix
	ttl := cfg.MaxTime + cfg.Duration + time.Hour
	admin, err := issuer.Mint(prefix+"admin", "bench-admin", []string{"Admin"}, ttl)
	if err != nil {
		return err
	}
	tokens := make([]string, cfg.Users)
	for i := range tokens {
		if tokens[i], err = issuer.Mint(fmt.Sprintf("%su%d", prefix, i), fmt.Sprintf("bench-user-%d", i), []string{"customer"}, ttl); err != nil {
			return err
		}
	}
	c := newClient(base, cfg.Users*cfg.InFlight)
	defer c.tr.CloseIdleConnections()

	nFlights := 1
	if cfg.Scenario == Spread {
		nFlights = cfg.Flights
	}
	flights := make([]*flightData, nFlights)
	for i := range flights {
		f, err := c.createFlight(ctx, admin, 9000+i, cfg.Seats, cfg.Price, cfg.Currency)
		if err != nil {
			return fmt.Errorf("bench: createFlight: %w", err)
		}
		flights[i] = f
	}
	ids := make([]string, len(flights))
	for i, f := range flights {
		ids[i] = f.ID
	}
	rep.Flights = len(flights)

	c.tr.CloseIdleConnections() // measured as after the run: one connection, the scrape's
	time.Sleep(200 * time.Millisecond)
	before, err := c.serverStats(ctx)
	if err != nil {
		rep.Notes = append(rep.Notes, "no /metrics before the run: "+err.Error())
	}
	rep.Before = before
	var commitsBefore int64 = -1
	if rep.Database == "postgres" {
		if commitsBefore, err = pgCommits(ctx, dbURL); err != nil {
			commitsBefore = -1
			rep.Notes = append(rep.Notes, "pg_stat_database: "+err.Error())
		}
	}

	r := &runner{cfg: cfg, c: c, admin: admin, flights: flights, hard: make(chan struct{}), failures: map[string]int{},
		perFlight: make([]atomic.Int64, len(flights))}
	r.hardCtx, r.cancelHard = context.WithCancel(context.WithoutCancel(ctx))
	defer r.cancelHard()
	var ru0 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)

	// Memory samples, every 250ms.
	rss := &rssSampler{srv: srv, c: c}
	samplerDone := make(chan struct{})
	samplerCtx, stopSampler := context.WithCancel(ctx)
	r.t0 = time.Now()
	requests0 := c.requests.Load()
	go func() { defer close(samplerDone); rss.run(samplerCtx, r.t0) }()

	// Stop conditions.
	deadline := cfg.MaxTime
	if cfg.Scenario == Spread {
		deadline = cfg.Duration
	}
	go func() {
		select {
		case <-time.After(deadline):
			if cfg.Scenario == FlashSale && !r.stop.Load() {
				r.note("the flash sale did not sell out within " + cfg.MaxTime.String())
			}
			r.stop.Store(true)
		case <-ctx.Done():
			r.note("interrupted: the figures cover a partial run")
			r.stop.Store(true)
			select {
			case <-time.After(10 * time.Second):
				r.hardStop()
			case <-r.hard:
			}
		case <-r.hard:
		}
	}()

	// The progress bar.
	barDone := make(chan struct{})
	progressStop := make(chan struct{})
	if cfg.Progress != nil {
		go func() { defer close(barDone); r.progress(cfg.Progress, progressStop) }()
	} else {
		close(barDone)
	}

	logf("load: %s, %d customers, %d flight(s) of %d seats", cfg.Scenario, cfg.Users, len(flights), cfg.Seats)
	loadCtx := context.WithoutCancel(ctx)
	var wg sync.WaitGroup
	for i, tok := range tokens {
		wg.Go(func() { r.user(loadCtx, tok, i%len(flights)) })
	}
	wg.Wait()
	loadEnd := time.Now()
	rep.Requests = int(c.requests.Load() - requests0)
	r.hardStop()
	close(progressStop)
	<-barDone

	// Let the sagas and their event jobs finish.
	settle := time.Now()
	for time.Since(settle) < 60*time.Second {
		s, err := c.serverStats(loadCtx)
		if err != nil || s.Running == 0 {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	stopSampler()
	<-samplerDone

	var ru1 syscall.Rusage
	_ = syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
	rep.ClientCPUSeconds = round3(cpuSeconds(ru1) - cpuSeconds(ru0))

	// No growth after the run: compare once our connections are closed and
	// their goroutines had time to end (the fewest of a few samples).
	c.tr.CloseIdleConnections()
	var after serverStats
	for i := range 6 {
		time.Sleep(500 * time.Millisecond)
		s, err := c.serverStats(loadCtx)
		c.tr.CloseIdleConnections()
		if err != nil {
			rep.Notes = append(rep.Notes, "no /metrics after the run: "+err.Error())
			break
		}
		if i == 0 || s.Goroutines < after.Goroutines {
			after = s
		}
		if after.Goroutines <= before.Goroutines {
			break
		}
	}
	rep.After = after
	rep.ServerCPUSeconds = round3(after.CPUSeconds - before.CPUSeconds)
	if n := float64(r.accepted.Load()); n > 0 && after.StoreUpdates > 0 {
		rep.StoreUpdatesPerBooking = round3((after.StoreUpdates - before.StoreUpdates) / n)
		rep.StoreCommitsPerBooking = round3((after.StoreCommits - before.StoreCommits) / n)
	}

	// Oversold as customers saw it, and the seats by the API.
	for i, f := range flights {
		if seen := int(r.perFlight[i].Load()); seen > f.SeatCapacity {
			rep.Oversold += seen - f.SeatCapacity
		}
	}
	var apiSold, apiCapacity int
	var apiErr error
	apiOK := true
	for i, f := range flights {
		got, err := c.getFlight(loadCtx, admin, f.ID)
		if err != nil {
			apiOK, apiErr = false, err
			break
		}
		sold := f.SeatCapacity - got.SeatCapacity
		apiSold += sold
		apiCapacity += f.SeatCapacity
		if sold != int(r.perFlight[i].Load()) || got.SeatCapacity < 0 {
			apiOK = false
		}
	}
	c.tr.CloseIdleConnections()

	// The database, read after the server stopped (embedded), or beside it.
	stopServer()
	rep.RSSMB = rss.peak()
	rep.RSSPeakMB = rss.hwm()
	var dbc *DBCheck
	if dbURL != "" {
		if dbc, err = checkDB(loadCtx, dbURL, ids, prefix); err != nil {
			rep.Notes = append(rep.Notes, "database check: "+err.Error())
			dbc = nil
		}
	}
	if rep.Database == "postgres" && commitsBefore >= 0 {
		if n, err := pgCommits(loadCtx, dbURL); err == nil && r.accepted.Load() > 0 {
			rep.CommitsPerBooking = round1(float64(n-commitsBefore) / float64(r.accepted.Load()))
		}
	}

	r.finish(rep, loadEnd, rss)
	rep.Invariants = invariants(rep, apiErr, apiOK, apiSold, apiCapacity, dbc)
	if rep.RawTxPerSec > 0 {
		rep.Ratio = round3(rep.ConfirmedPerSec / rep.RawTxPerSec)
	}
	return nil
}

func cpuSeconds(ru syscall.Rusage) float64 {
	return float64(ru.Utime.Sec+ru.Stime.Sec) + float64(ru.Utime.Usec+ru.Stime.Usec)/1e6
}

// progress draws a bar: seats sold (flash sale) or time (spread).
func (r *runner) progress(w io.Writer, stop <-chan struct{}) {
	max := r.cfg.Seats
	desc := "flash-sale: seats sold"
	if r.cfg.Scenario == Spread {
		max = int(r.cfg.Duration / time.Second)
		desc = "spread: seconds"
	}
	bar := progressbar.NewOptions(max, progressbar.OptionSetWriter(w), progressbar.OptionSetDescription(desc),
		progressbar.OptionShowCount(), progressbar.OptionSetWidth(30), progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true), progressbar.OptionClearOnFinish())
	tick := time.NewTicker(200 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case <-stop:
			_ = bar.Finish()
			fmt.Fprintln(w)
			return
		case <-tick.C:
		}
		el := time.Since(r.t0)
		conf := r.confirmed.Load()
		if r.cfg.Scenario == Spread {
			_ = bar.Set(min(int(el/time.Second), max))
		} else {
			_ = bar.Set(min(int(conf), max))
		}
		bar.Describe(fmt.Sprintf("%s  %d confirmed (%.0f/s)", desc, conf, float64(conf)/el.Seconds()))
	}
}

// finish turns the samples into the report's figures.
func (r *runner) finish(rep *Report, loadEnd time.Time, rss *rssSampler) {
	r.mu.Lock()
	defer r.mu.Unlock()
	rep.Requested = int(r.requested.Load())
	rep.Accepted = int(r.accepted.Load())
	rep.Confirmed = int(r.confirmed.Load())
	rep.Cancelled = int(r.cancelled.Load())
	rep.Unfinished = int(r.unfinished.Load())
	rep.CancelledWithSeatsLeft = int(r.cancelledEarly.Load())
	rep.Polls = int(r.polls.Load())
	if rep.Accepted > 0 {
		rep.PollsPerBooking = round1(float64(rep.Polls) / float64(rep.Accepted))
		rep.RequestsPerBooking = round1(float64(rep.Requests) / float64(rep.Accepted))
	}
	rep.Failures = r.failures
	rep.Notes = append(rep.Notes, r.notes...)
	if r.gaveUp > 0 {
		rep.Notes = append(rep.Notes, fmt.Sprintf("%d customers gave up after failures in a row (100, or 20 without an answer)", r.gaveUp))
	}
	rep.LoadSeconds = round3(loadEnd.Sub(r.t0).Seconds())

	var charge, book, confirm []time.Duration
	var lastAccept, lastConfirm time.Duration
	for _, s := range r.samples {
		switch s.kind {
		case kCharge:
			charge = append(charge, s.lat)
		case kBook:
			book = append(book, s.lat)
			lastAccept = max(lastAccept, s.at)
		case kConfirm:
			confirm = append(confirm, s.lat)
			lastConfirm = max(lastConfirm, s.at)
		}
	}
	rep.AcceptedPerSec = rate(rep.Accepted, lastAccept)
	rep.ConfirmedPerSec = rate(rep.Confirmed, lastConfirm)
	rep.CreateCharge = Summarize(charge)
	rep.ProcessBooking = Summarize(book)
	rep.TimeToConfirmed = Summarize(confirm)
	rep.P50BookMs, rep.P99BookMs = rep.ProcessBooking.P50, rep.ProcessBooking.P99
	rep.P50ConfirmMs, rep.P95ConfirmMs = rep.TimeToConfirmed.P50, rep.TimeToConfirmed.P95
	rep.P99ConfirmMs, rep.MaxConfirmMs = rep.TimeToConfirmed.P99, rep.TimeToConfirmed.Max
	rep.Series = series(r.samples, rss.samples())
	if rep.Accepted > 0 && rep.ServerCPUSeconds > 0 && !rep.RSSIncludesLoadGenerator {
		rep.ServerCPUMsPerBooking = round3(rep.ServerCPUSeconds * 1000 / float64(rep.Accepted))
	}
}

// series buckets the samples by second.
func series(samples []sample, mem []rssSample) []Second {
	var n int
	for _, s := range samples {
		n = max(n, int(s.at/time.Second)+1)
	}
	for _, m := range mem {
		n = max(n, int(m.at/time.Second)+1)
	}
	out := make([]Second, n)
	lats := make([][]time.Duration, n)
	for i := range out {
		out[i].T = i
	}
	for _, s := range samples {
		i := int(s.at / time.Second)
		switch s.kind {
		case kBook:
			out[i].Accepted++
		case kConfirm:
			out[i].Confirmed++
			lats[i] = append(lats[i], s.lat)
		case kCancel:
			out[i].Cancelled++
		}
	}
	for i, l := range lats {
		s := Summarize(l)
		out[i].P50ConfirmMs, out[i].P99ConfirmMs = s.P50, s.P99
	}
	for _, m := range mem {
		i := int(m.at / time.Second)
		out[i].RSSMB = max(out[i].RSSMB, m.mb)
	}
	return out
}

type rssSample struct {
	at time.Duration
	mb float64
}

// rssSampler samples the server's resident memory: /proc for a process we
// know, /metrics (process_resident_memory_bytes) otherwise.
type rssSampler struct {
	srv *Server
	c   *client
	mu  sync.Mutex
	s   []rssSample
	max float64
	hw  float64
}

func (m *rssSampler) run(ctx context.Context, t0 time.Time) {
	interval := 250 * time.Millisecond
	if m.srv == nil || m.srv.PID == 0 {
		interval = time.Second // a /metrics scrape costs the server a little
	}
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		m.sample(ctx, t0)
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}

func (m *rssSampler) sample(ctx context.Context, t0 time.Time) {
	var mb, hwm float64
	if m.srv != nil && m.srv.PID > 0 {
		st, err := procStatus(m.srv.PID, "VmRSS", "VmHWM")
		if err != nil {
			return
		}
		mb, hwm = round1(float64(st["VmRSS"])/1024), round1(float64(st["VmHWM"])/1024)
	} else {
		s, err := m.c.serverStats(ctx)
		if err != nil {
			return
		}
		mb = s.RSSMB
	}
	m.mu.Lock()
	m.s = append(m.s, rssSample{at: time.Since(t0), mb: mb})
	m.max = max(m.max, mb)
	m.hw = max(m.hw, hwm)
	m.mu.Unlock()
}

func (m *rssSampler) peak() float64 { m.mu.Lock(); defer m.mu.Unlock(); return m.max }
func (m *rssSampler) hwm() float64  { m.mu.Lock(); defer m.mu.Unlock(); return m.hw }
func (m *rssSampler) samples() []rssSample {
	m.mu.Lock()
	defer m.mu.Unlock()
	return slices.Clone(m.s)
}

// invariants combines what the API and the database say.
func invariants(rep *Report, apiErr error, apiOK bool, apiSold, apiCapacity int, dbc *DBCheck) Invariants {
	inv := Invariants{APISeatsOK: apiOK, APISold: apiSold, APICapacity: apiCapacity, DB: dbc}
	inv.OK = apiOK && rep.Oversold == 0 && rep.Unfinished == 0
	if apiErr != nil {
		inv.Problems = append(inv.Problems, "the flights could not be read after the run: "+apiErr.Error())
	} else if !apiOK {
		inv.Problems = append(inv.Problems, fmt.Sprintf("the flights' seatCapacity went down by %d but customers saw %d bookings CONFIRMED",
			apiSold, rep.Confirmed))
	}
	if rep.Unfinished > 0 {
		inv.Problems = append(inv.Problems, fmt.Sprintf("%d bookings had no outcome in time", rep.Unfinished))
	}
	if dbc != nil {
		rep.Oversold = max(rep.Oversold, dbc.Oversold)
		inv.OK = inv.OK && dbc.SeatsOK && dbc.MoneyOK && dbc.Confirmed == rep.Confirmed && rep.Oversold == 0
		if dbc.Confirmed != rep.Confirmed {
			inv.Problems = append(inv.Problems, fmt.Sprintf("the database has %d CONFIRMED bookings, customers saw %d", dbc.Confirmed, rep.Confirmed))
		}
		inv.Problems = append(inv.Problems, dbc.Problems...)
		rep.ServerTimeToConfirmed = &dbc.ServerConfirm
	} else {
		inv.Problems = append(inv.Problems, "money not checked: the database is not reachable (pass --database)")
	}
	return inv
}

// machineInfo describes where the benchmark runs.
func machineInfo() Machine {
	m := Machine{GoVersion: runtime.Version(), OS: runtime.GOOS, Arch: runtime.GOARCH, CPUs: runtime.NumCPU()}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(k) == "model name" {
				m.CPU = strings.TrimSpace(v)
				break
			}
		}
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		for line := range strings.SplitSeq(string(b), "\n") {
			if k, v, ok := strings.Cut(line, ":"); ok && k == "MemTotal" {
				f := strings.Fields(v)
				if len(f) > 0 {
					kb, _ := strconv.ParseInt(f[0], 10, 64)
					m.MemoryMB = int(kb / 1024)
				}
			}
		}
	}
	return m
}
