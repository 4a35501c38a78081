package saga_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/testdb"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
	"github.com/berthhq/berth/store/storetest"
)

// The engine is driven with Tick and a fake clock: every wait is a clock
// advance, never a sleep.

const lease = 30 * time.Second

var t0 = time.Date(2026, 5, 1, 9, 0, 0, 0, time.UTC)

// dialects runs fn once per store dialect, in parallel.
func dialects(t *testing.T, fn func(t *testing.T, dialect string)) {
	t.Helper()
	t.Parallel()
	for _, d := range testdb.Dialects() {
		t.Run(d, func(t *testing.T) {
			t.Parallel()
			fn(t, d)
		})
	}
}

// fixture is a store with a fake clock shared by the engines made from it.
type fixture struct {
	ctx   context.Context
	clock *storetest.Clock
	store *store.DB
	logs  *logBuffer
}

func setup(t *testing.T, dialect string) *fixture {
	t.Helper()
	return setupClock(t, dialect, nil)
}

// setupClock is setup with the store telling time by clock instead of the
// fixture's fake clock.
func setupClock(t *testing.T, dialect string, clock berth.Clock) *fixture {
	t.Helper()
	f := &fixture{ctx: context.Background(), clock: storetest.NewClock(t0), logs: &logBuffer{}}
	if clock == nil {
		clock = f.clock
	}
	db, err := store.Open(f.ctx, store.Config{URL: testdb.URL(t, dialect), Clock: clock, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	f.store = db
	return f
}

// engine returns a new engine (a runner process) named owner.
func (f *fixture) engine(owner string) *saga.Engine {
	return saga.New(saga.Config{Store: f.store, Clock: f.clock, Owner: owner, Lease: lease,
		Logger: slog.New(slog.NewTextHandler(f.logs, nil))})
}

func (f *fixture) tick(t *testing.T, e *saga.Engine) int {
	t.Helper()
	n, err := e.Tick(f.ctx)
	if err != nil {
		t.Fatalf("Tick: %v", err)
	}
	return n
}

func (f *fixture) get(t *testing.T, id string) *berth.Execution {
	t.Helper()
	var x *berth.Execution
	if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { x, err = tx.GetExecution(id); return err }); err != nil {
		t.Fatal(err)
	}
	return x
}

// history returns the execution's history as "Type" or "Type:state".
func (f *fixture) history(t *testing.T, id string) []string {
	t.Helper()
	var hs []*berth.HistoryEntry
	if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { hs, err = tx.ListHistory(id); return err }); err != nil {
		t.Fatal(err)
	}
	out := make([]string, len(hs))
	for i, h := range hs {
		out[i] = string(h.Type)
		if h.State != "" {
			out[i] += ":" + h.State
		}
		if i > 0 && h.Seq <= hs[i-1].Seq {
			t.Errorf("history seq %d after %d", h.Seq, hs[i-1].Seq)
		}
	}
	return out
}

// runToEnd ticks e, moving the clock to each retry, until x stops running.
func (f *fixture) runToEnd(t *testing.T, e *saga.Engine, id string) *berth.Execution {
	t.Helper()
	for range 50 {
		f.tick(t, e)
		x := f.get(t, id)
		if x.Status != berth.ExecutionRunning {
			return x
		}
		if !x.NextRunAt.After(f.clock.Now()) {
			t.Fatalf("execution is due (%v) but Tick left it running: %+v", x.NextRunAt, x)
		}
		f.clock.Set(x.NextRunAt)
	}
	t.Fatalf("execution %s did not finish", id)
	return nil
}

func start[S any](t *testing.T, f *fixture, d *saga.Definition[S], state S, opts saga.StartOptions) *berth.Execution {
	t.Helper()
	var x *berth.Execution
	if err := f.store.Update(f.ctx, func(tx berth.Tx) (err error) { x, err = d.Start(tx, state, opts); return err }); err != nil {
		t.Fatalf("Start: %v", err)
	}
	return x
}

// createFlight stores a flight with seats seats and returns its id.
func createFlight(t *testing.T, f *fixture, seats int) string {
	t.Helper()
	fl := &berth.Flight{FlightNumber: 1, DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD",
		DepartureDate: "2026-12-01T08:00:00Z", ArrivalDate: "2026-12-01T10:00:00Z"}
	fl.Capacity, fl.Available, fl.Price, fl.Currency = seats, seats, 100, "EUR"
	if err := fl.Validate(); err != nil {
		t.Fatal(err)
	}
	if err := f.store.Update(f.ctx, func(tx berth.Tx) error { return tx.CreateFlight(fl) }); err != nil {
		t.Fatal(err)
	}
	return fl.ID
}

func (f *fixture) available(t *testing.T, flight string) int {
	t.Helper()
	var r *berth.Resource
	if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { r, err = tx.GetResource(flight); return err }); err != nil {
		t.Fatal(err)
	}
	return r.Available
}

// logBuffer collects the engines' logs.
type logBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *logBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *logBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// The booking saga of the tests: reserve a seat, charge, confirm; undone by
// refund, void, release. Every action records that it ran, and its Tx
// counts its committed effect in the KV space, so a test sees what ran and
// what committed.

type bookState struct {
	Flight    string
	Seats     int
	Charge    string
	Confirmed bool
	Trail     []string // actions whose Call succeeded, in order
}

var (
	forward      = []string{"reserve", "charge", "confirm"}
	compensation = []string{"refund", "void", "release"}
	allActions   = append(slices.Clone(forward), compensation...)
)

// script injects failures and records what ran.
type script struct {
	mu       sync.Mutex
	calls    []string                            // every Call, in order
	n        map[string]int                      // Calls per action
	txn      map[string]int                      // Tx runs per action (committed or not)
	failCall map[string]func(n int) error        // the nth Call of an action fails with this
	failTx   map[string]func(n int) error        // the nth Tx of an action fails with this
	hook     map[string]func(n int)              // runs in the nth Call of an action, before it fails or not
	retry    saga.RetryPolicy                    // for every action
	opts     func(d *saga.Definition[bookState]) // adjusts the definition
}

func newScript() *script {
	return &script{n: map[string]int{}, txn: map[string]int{}, failCall: map[string]func(int) error{},
		failTx: map[string]func(int) error{}, hook: map[string]func(int){},
		retry: saga.RetryPolicy{MaxAttempts: 3, Initial: time.Second, Max: 10 * time.Second}}
}

// always fails every time with err.
func always(err error) func(int) error { return func(int) error { return err } }

// firstN fails the first n times with err.
func firstN(n int, err error) func(int) error {
	return func(i int) error {
		if i <= n {
			return err
		}
		return nil
	}
}

var errDown = berth.Errorf(berth.EUNAVAILABLE, "the provider is down")

func (s *script) call(name string, r *saga.Run[bookState]) error {
	s.mu.Lock()
	s.n[name]++
	n := s.n[name]
	s.calls = append(s.calls, name)
	fail, hook := s.failCall[name], s.hook[name]
	s.mu.Unlock()
	// A failed attempt's changes to the state must not be kept.
	r.State.Trail = append(r.State.Trail, name)
	if hook != nil {
		hook(n)
	}
	if fail != nil {
		return fail(n)
	}
	return nil
}

func (s *script) tx(name string, tx berth.Tx, r *saga.Run[bookState]) error {
	s.mu.Lock()
	s.txn[name]++
	n := s.txn[name]
	fail := s.failTx[name]
	s.mu.Unlock()
	if err := countEffect(tx, r.Execution.ID, name); err != nil {
		return err
	}
	if fail != nil {
		return fail(n)
	}
	return nil
}

func (s *script) callCount(name string) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.n[name]
}

func (s *script) callOrder() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return slices.Clone(s.calls)
}

// countEffect adds one to the committed count of action for execution id.
func countEffect(tx berth.Tx, id, action string) error {
	n := 0
	v, err := tx.GetKV("effects", id+"/"+action)
	if err == nil {
		n, _ = strconv.Atoi(string(v))
	} else if berth.ErrorCode(err) != berth.ENOTFOUND {
		return err
	}
	return tx.PutKV("effects", id+"/"+action, []byte(strconv.Itoa(n+1)))
}

// effects returns the committed effects of each action of execution id.
func (f *fixture) effects(t *testing.T, id string) map[string]int {
	t.Helper()
	out := map[string]int{}
	err := f.store.View(f.ctx, func(tx berth.Tx) error {
		for _, a := range allActions {
			v, err := tx.GetKV("effects", id+"/"+a)
			if berth.ErrorCode(err) == berth.ENOTFOUND {
				continue
			} else if err != nil {
				return err
			}
			out[a], _ = strconv.Atoi(string(v))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func (s *script) definition() *saga.Definition[bookState] {
	act := func(name string, call func(r *saga.Run[bookState]) error, tx func(tx berth.Tx, r *saga.Run[bookState]) error) saga.Action[bookState] {
		return saga.Action[bookState]{
			Name:  name,
			Retry: s.retry,
			Call: func(ctx context.Context, r *saga.Run[bookState]) error {
				if err := s.call(name, r); err != nil {
					return err
				}
				if call != nil {
					return call(r)
				}
				return nil
			},
			Tx: func(ctx context.Context, t berth.Tx, r *saga.Run[bookState]) error {
				if tx != nil {
					if err := tx(t, r); err != nil {
						return err
					}
				}
				return s.tx(name, t, r)
			},
		}
	}
	holdKey := func(r *saga.Run[bookState]) string { return r.Key("reserve") }
	d := &saga.Definition[bookState]{
		Name: "book",
		Steps: []saga.Step[bookState]{
			{Action: act("reserve", nil, func(tx berth.Tx, r *saga.Run[bookState]) error {
				_, err := tx.Reserve(&berth.Hold{Key: holdKey(r), ResourceID: r.State.Flight, BookingID: r.Execution.Correlation, Quantity: r.State.Seats})
				return err
			}), Compensate: "release"},
			{Action: act("charge", func(r *saga.Run[bookState]) error {
				r.State.Charge = "ch-" + r.Key("charge")
				return nil
			}, nil), Compensate: "void"},
			{Action: act("confirm", func(r *saga.Run[bookState]) error {
				if r.State.Charge != "ch-"+r.Key("charge") {
					return saga.Permanent(fmt.Errorf("confirm sees charge %q", r.State.Charge))
				}
				return nil
			}, func(tx berth.Tx, r *saga.Run[bookState]) error {
				r.State.Confirmed = true
				return nil
			}), Compensate: "refund"},
		},
		Compensation: []saga.Action[bookState]{
			act("refund", nil, nil),
			act("void", nil, func(tx berth.Tx, r *saga.Run[bookState]) error {
				r.State.Charge = ""
				return nil
			}),
			act("release", nil, func(tx berth.Tx, r *saga.Run[bookState]) error {
				_, err := tx.Release(holdKey(r))
				return err
			}),
		},
	}
	if s.opts != nil {
		s.opts(d)
	}
	return d
}

// booking starts the booking saga for two seats of a new 10-seat flight.
func (f *fixture) booking(t *testing.T, s *script, e *saga.Engine, opts saga.StartOptions) (*berth.Execution, string) {
	t.Helper()
	flight := createFlight(t, f, 10)
	d := s.definition()
	if e != nil {
		saga.MustRegister(e, d)
	}
	return start(t, f, d, bookState{Flight: flight, Seats: 2}, opts), flight
}

// History fragments.
func done(name string) []string {
	return []string{"StateEntered:" + name, "StateSucceeded:" + name}
}
func undone(name string) []string {
	return []string{"StateEntered:" + name, "StateCompensated:" + name}
}
func retried(name string) []string {
	return []string{"StateEntered:" + name, "StateRetryScheduled:" + name}
}
func failed(name string) []string {
	return []string{"StateEntered:" + name, "StateFailed:" + name}
}
func seq(parts ...[]string) []string { return slices.Concat(parts...) }

var (
	started     = []string{"ExecutionStarted"}
	compensated = []string{"CompensationStarted"}
)

func rep(n int, s string) []string { return slices.Repeat([]string{s}, n) }

// TestOutcomes drives the booking saga through each way it can end, on
// every dialect.
func TestOutcomes(t *testing.T) {
	tests := []struct {
		name    string
		arrange func(s *script)
		status  berth.ExecutionStatus
		errText string // prefix of Execution.Error
		calls   []string
		effects map[string]int
		trail   []string
		seats   int // still available of 10
		history []string
	}{{
		name:    "Succeeds",
		status:  berth.ExecutionSucceeded,
		calls:   forward,
		effects: map[string]int{"reserve": 1, "charge": 1, "confirm": 1},
		trail:   forward,
		seats:   8,
		history: seq(started, done("reserve"), done("charge"), done("confirm"), []string{"ExecutionSucceeded"}),
	}, {
		name:    "TransientErrorsRetried",
		arrange: func(s *script) { s.failCall["charge"] = firstN(2, errDown) },
		status:  berth.ExecutionSucceeded,
		calls:   seq([]string{"reserve"}, rep(3, "charge"), []string{"confirm"}),
		effects: map[string]int{"reserve": 1, "charge": 1, "confirm": 1},
		trail:   forward,
		seats:   8,
		history: seq(started, done("reserve"), retried("charge"), retried("charge"), done("charge"), done("confirm"), []string{"ExecutionSucceeded"}),
	}, {
		name:    "BusinessErrorCompensatesAtOnce",
		arrange: func(s *script) { s.failCall["confirm"] = always(berth.Errorf(berth.ESOLDOUT, "the flight filled up")) },
		status:  berth.ExecutionFailed,
		errText: "SOLD_OUT: the flight filled up",
		calls:   []string{"reserve", "charge", "confirm", "refund", "void", "release"},
		effects: map[string]int{"reserve": 1, "charge": 1, "refund": 1, "void": 1, "release": 1},
		trail:   []string{"reserve", "charge", "refund", "void", "release"},
		seats:   10,
		history: seq(started, done("reserve"), done("charge"), failed("confirm"), compensated,
			undone("refund"), undone("void"), undone("release"), []string{"ExecutionFailed"}),
	}, {
		name:    "PermanentErrorCompensatesAtOnce",
		arrange: func(s *script) { s.failCall["charge"] = always(saga.Permanent(errors.New("card rejected"))) },
		status:  berth.ExecutionFailed,
		errText: "INTERNAL",
		calls:   []string{"reserve", "charge", "void", "release"},
		effects: map[string]int{"reserve": 1, "void": 1, "release": 1},
		trail:   []string{"reserve", "void", "release"},
		seats:   10,
		history: seq(started, done("reserve"), failed("charge"), compensated, undone("void"), undone("release"), []string{"ExecutionFailed"}),
	}, {
		name:    "AttemptsExhaustedCompensate",
		arrange: func(s *script) { s.failCall["charge"] = always(errDown) },
		status:  berth.ExecutionFailed,
		errText: "UNAVAILABLE: the provider is down",
		calls:   []string{"reserve", "charge", "charge", "charge", "void", "release"},
		effects: map[string]int{"reserve": 1, "void": 1, "release": 1},
		trail:   []string{"reserve", "void", "release"},
		seats:   10,
		history: seq(started, done("reserve"), retried("charge"), retried("charge"), failed("charge"), compensated,
			undone("void"), undone("release"), []string{"ExecutionFailed"}),
	}, {
		name:    "FirstStepFailsCompensatesItsEntryOnly",
		arrange: func(s *script) { s.failTx["reserve"] = always(berth.Errorf(berth.EINVALID, "no such fare")) },
		status:  berth.ExecutionFailed,
		errText: "INVALID: no such fare",
		calls:   []string{"reserve", "release"},
		effects: map[string]int{"release": 1},
		trail:   []string{"release"},
		seats:   10,
		history: seq(started, failed("reserve"), compensated, undone("release"), []string{"ExecutionFailed"}),
	}, {
		name: "NoCompensateStepDeadLetters",
		arrange: func(s *script) {
			s.failCall["confirm"] = always(errDown)
			s.opts = func(d *saga.Definition[bookState]) { d.Steps[2].NoCompensate = true }
		},
		status:  berth.ExecutionDead,
		errText: "UNAVAILABLE",
		calls:   []string{"reserve", "charge", "confirm", "confirm", "confirm"},
		effects: map[string]int{"reserve": 1, "charge": 1},
		trail:   []string{"reserve", "charge"},
		seats:   8,
		history: seq(started, done("reserve"), done("charge"), retried("confirm"), retried("confirm"), failed("confirm"),
			[]string{"ExecutionDeadLettered:confirm"}),
	}, {
		name: "FailingCompensationDeadLetters",
		arrange: func(s *script) {
			s.failCall["confirm"] = always(berth.Errorf(berth.EPAYMENTDECLINED, "declined"))
			s.failCall["void"] = always(errDown)
		},
		status:  berth.ExecutionDead,
		errText: "UNAVAILABLE",
		calls:   []string{"reserve", "charge", "confirm", "refund", "void", "void", "void"},
		effects: map[string]int{"reserve": 1, "charge": 1, "refund": 1},
		trail:   []string{"reserve", "charge", "refund"},
		seats:   8,
		history: seq(started, done("reserve"), done("charge"), failed("confirm"), compensated, undone("refund"),
			retried("void"), retried("void"), failed("void"), []string{"ExecutionDeadLettered:void"}),
	}, {
		name: "BusinessErrorInCompensationDeadLetters",
		arrange: func(s *script) {
			s.failCall["confirm"] = always(errDown)
			s.failCall["refund"] = always(berth.Errorf(berth.ECONFLICT, "already refunded"))
		},
		status:  berth.ExecutionDead,
		errText: "CONFLICT: already refunded",
		calls:   []string{"reserve", "charge", "confirm", "confirm", "confirm", "refund"},
		effects: map[string]int{"reserve": 1, "charge": 1},
		trail:   []string{"reserve", "charge"},
		seats:   8,
		history: seq(started, done("reserve"), done("charge"), retried("confirm"), retried("confirm"), failed("confirm"), compensated,
			failed("refund"), []string{"ExecutionDeadLettered:refund"}),
	}}
	dialects(t, func(t *testing.T, dialect string) {
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				s := newScript()
				if tt.arrange != nil {
					tt.arrange(s)
				}
				e := f.engine("runner")
				x, flight := f.booking(t, s, e, saga.StartOptions{Correlation: "booking-1"})
				x = f.runToEnd(t, e, x.ID)

				if x.Status != tt.status || !strings.HasPrefix(x.Error, tt.errText) || (tt.errText == "") != (x.Error == "") {
					t.Errorf("status %s error %q, want %s %q", x.Status, x.Error, tt.status, tt.errText)
				}
				if x.LeaseOwner != "" || !x.LeaseUntil.IsZero() {
					t.Errorf("an execution that stopped keeps its lease: %q until %v", x.LeaseOwner, x.LeaseUntil)
				}
				if got := s.callOrder(); !slices.Equal(got, tt.calls) {
					t.Errorf("calls %v, want %v", got, tt.calls)
				}
				if got := f.effects(t, x.ID); !mapsEqual(got, tt.effects) {
					t.Errorf("committed effects %v, want %v", got, tt.effects)
				}
				var st bookState
				if err := json.Unmarshal(x.State, &st); err != nil {
					t.Fatal(err)
				}
				if !slices.Equal(st.Trail, tt.trail) {
					t.Errorf("state trail %v, want %v", st.Trail, tt.trail)
				}
				if got := f.available(t, flight); got != tt.seats {
					t.Errorf("%d seats available, want %d", got, tt.seats)
				}
				if got := f.history(t, x.ID); !slices.Equal(got, tt.history) {
					t.Errorf("history\n got %v\nwant %v", got, tt.history)
				}
			})
		}
	})
}

func mapsEqual(a, b map[string]int) bool {
	if len(a) != len(b) {
		return false
	}
	for k, v := range a {
		if w, ok := b[k]; !ok || w != v {
			return false
		}
	}
	return true
}

// TestHappyPathHistory checks the details of a clean run's history.
func TestHappyPathHistory(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		var results []saga.StepResult
		e := saga.New(saga.Config{Store: f.store, Clock: f.clock, Owner: "runner", Lease: lease, Logger: slog.New(slog.DiscardHandler),
			OnStep: func(r saga.StepResult) { results = append(results, r) }})
		x, _ := f.booking(t, s, e, saga.StartOptions{Correlation: "booking-7", Input: map[string]int{"seats": 2}})
		if x.Status != berth.ExecutionRunning || x.Phase != berth.PhaseForward || !x.NextRunAt.Equal(t0) || x.Correlation != "booking-7" {
			t.Fatalf("started execution: %+v", x)
		}
		if n := f.tick(t, e); n != 1 {
			t.Fatalf("Tick ran %d executions, want 1", n)
		}
		if n := f.tick(t, e); n != 0 {
			t.Fatalf("a second Tick ran %d executions", n)
		}
		x = f.get(t, x.ID)
		if x.Status != berth.ExecutionSucceeded || x.Step != 3 || x.Attempt != 0 || string(x.Input) != `{"seats":2}` {
			t.Fatalf("finished execution: %+v", x)
		}
		var hs []*berth.HistoryEntry
		if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { hs, err = tx.ListHistory(x.ID); return err }); err != nil {
			t.Fatal(err)
		}
		for i, h := range hs {
			if h.ExecutionID != x.ID || !h.At.Equal(t0) {
				t.Errorf("entry %d: %+v", i, h)
			}
			if (h.Type == berth.HistStateEntered || h.Type == berth.HistStateSucceeded) && h.Attempt != 1 {
				t.Errorf("entry %d: attempt %d, want 1", i, h.Attempt)
			}
		}
		if hs[0].Detail != "book" {
			t.Errorf("ExecutionStarted detail %q, want the definition name", hs[0].Detail)
		}
		if len(results) != 3 {
			t.Fatalf("OnStep saw %d results, want 3", len(results))
		}
		for i, r := range results {
			if r.Definition != "book" || r.Step != forward[i] || r.Outcome != "succeeded" || r.Phase != berth.PhaseForward {
				t.Errorf("OnStep result %d: %+v", i, r)
			}
		}
	})
}

// TestCompensationEntry checks that a failing step enters the compensation
// chain at the entry its Compensate names and runs the chain on from there,
// in order.
func TestCompensationEntry(t *testing.T) {
	t.Parallel()
	sold := berth.Errorf(berth.ESOLDOUT, "sold out")
	for _, tt := range []struct {
		failing string
		entry   string // overrides the step's Compensate
		want    []string
	}{
		{"reserve", "", []string{"release"}},
		{"charge", "", []string{"void", "release"}},
		{"confirm", "", []string{"refund", "void", "release"}},
		{"charge", "-", []string{"refund", "void", "release"}}, // Compensate "" enters at the first
		{"confirm", "release", []string{"release"}},
	} {
		t.Run(tt.failing+"/"+tt.entry, func(t *testing.T) {
			t.Parallel()
			f := setup(t, "sqlite")
			s := newScript()
			s.failCall[tt.failing] = always(sold)
			s.opts = func(d *saga.Definition[bookState]) {
				for i := range d.Steps {
					if d.Steps[i].Name == tt.failing && tt.entry != "" {
						d.Steps[i].Compensate = strings.TrimPrefix(tt.entry, "-")
					}
				}
			}
			e := f.engine("runner")
			x, _ := f.booking(t, s, e, saga.StartOptions{})
			x = f.runToEnd(t, e, x.ID)
			if x.Status != berth.ExecutionFailed {
				t.Fatalf("status %s", x.Status)
			}
			calls := s.callOrder()
			got := calls[slices.Index(calls, tt.failing)+1:]
			if !slices.Equal(got, tt.want) {
				t.Fatalf("compensations ran %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStatePersists checks that the typed state a step sets is stored with
// the step and seen by later steps, also by a new engine after a restart,
// and that a failed attempt's changes are dropped.
func TestStatePersists(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		s.failCall["confirm"] = firstN(1, errDown)
		first := f.engine("before-restart")
		x, _ := f.booking(t, s, first, saga.StartOptions{})
		f.tick(t, first)

		x = f.get(t, x.ID)
		if x.Status != berth.ExecutionRunning || x.Step != 2 || x.Attempt != 1 {
			t.Fatalf("after the first tick: step %d attempt %d status %s", x.Step, x.Attempt, x.Status)
		}
		var st bookState
		if err := json.Unmarshal(x.State, &st); err != nil {
			t.Fatal(err)
		}
		wantCharge := "ch-" + x.ID + ":charge"
		if st.Charge != wantCharge || !slices.Equal(st.Trail, []string{"reserve", "charge"}) || st.Confirmed {
			t.Fatalf("stored state after a failed confirm: %+v", st)
		}

		// The process restarts: a new engine with the definition registered
		// again picks the execution up from the database.
		second := f.engine("after-restart")
		saga.MustRegister(second, s.definition())
		f.clock.Set(x.NextRunAt)
		if n := f.tick(t, second); n != 1 {
			t.Fatalf("the new engine ran %d executions", n)
		}
		x = f.get(t, x.ID)
		if err := json.Unmarshal(x.State, &st); err != nil {
			t.Fatal(err)
		}
		if x.Status != berth.ExecutionSucceeded || st.Charge != wantCharge || !st.Confirmed || !slices.Equal(st.Trail, forward) {
			t.Fatalf("after the restart: %s %+v", x.Status, st)
		}
		if got := f.effects(t, x.ID); !mapsEqual(got, map[string]int{"reserve": 1, "charge": 1, "confirm": 1}) {
			t.Fatalf("effects %v", got)
		}
	})
}

// TestRetryBackoff checks when a transient failure is tried again.
func TestRetryBackoff(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		s.retry = saga.RetryPolicy{MaxAttempts: 5, Initial: 10 * time.Second, Max: time.Minute, Jitter: 0.2}
		s.failCall["charge"] = firstN(2, errDown)
		e := f.engine("runner")
		x, _ := f.booking(t, s, e, saga.StartOptions{})

		for attempt, base := range []time.Duration{10 * time.Second, 20 * time.Second} {
			failedAt := f.clock.Now()
			if n := f.tick(t, e); n != 1 {
				t.Fatalf("attempt %d: Tick ran %d", attempt+1, n)
			}
			x = f.get(t, x.ID)
			if x.Status != berth.ExecutionRunning || x.Step != 1 || x.Attempt != attempt+1 || x.LeaseOwner != "" {
				t.Fatalf("after failure %d: %+v", attempt+1, x)
			}
			if x.Error != "" {
				t.Errorf("a retry set the execution's error: %q", x.Error)
			}
			// The delay is the backoff for this attempt, ±20% jitter (and
			// the store's microsecond truncation).
			delay := x.NextRunAt.Sub(failedAt)
			lo, hi := time.Duration(float64(base)*0.8)-time.Microsecond, time.Duration(float64(base)*1.2)
			if delay < lo || delay > hi {
				t.Fatalf("after failure %d the retry is in %v, want within [%v, %v]", attempt+1, delay, lo, hi)
			}
			// Nothing runs before then.
			f.clock.Set(x.NextRunAt.Add(-time.Microsecond))
			if n := f.tick(t, e); n != 0 {
				t.Fatalf("Tick before the retry is due ran %d", n)
			}
			if got := s.callCount("charge"); got != attempt+1 {
				t.Fatalf("charge called %d times before the retry was due", got)
			}
			next := view(t, f, func(tx berth.Tx) (time.Time, error) { return tx.NextDue() })
			if !next.Equal(x.NextRunAt) {
				t.Fatalf("NextDue = %v, want the retry time %v", next, x.NextRunAt)
			}
			f.clock.Set(x.NextRunAt)
		}
		if n := f.tick(t, e); n != 1 {
			t.Fatalf("the due retry did not run")
		}
		if x = f.get(t, x.ID); x.Status != berth.ExecutionSucceeded || s.callCount("charge") != 3 {
			t.Fatalf("after the retries: %s, charge called %d times", x.Status, s.callCount("charge"))
		}
	})
}

func view[T any](t *testing.T, f *fixture, fn func(tx berth.Tx) (T, error)) T {
	t.Helper()
	var v T
	if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { v, err = fn(tx); return err }); err != nil {
		t.Fatal(err)
	}
	return v
}

// TestFailingTxRollsBack checks that a step whose Tx fails leaves no trace
// of its writes, and that its retry commits them once.
func TestFailingTxRollsBack(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		s.failTx["reserve"] = firstN(1, errDown) // after reserving and counting
		e := f.engine("runner")
		x, flight := f.booking(t, s, e, saga.StartOptions{})
		f.tick(t, e)
		x = f.get(t, x.ID)
		if x.Step != 0 || x.Attempt != 1 {
			t.Fatalf("step %d attempt %d after the failed Tx", x.Step, x.Attempt)
		}
		if got := f.available(t, flight); got != 10 {
			t.Fatalf("%d seats available after a rolled-back reserve, want 10", got)
		}
		if got := f.effects(t, x.ID); len(got) != 0 {
			t.Fatalf("effects of a rolled-back Tx: %v", got)
		}
		err := f.store.View(f.ctx, func(tx berth.Tx) error { _, err := tx.GetHold(x.ID + ":reserve"); return err })
		if berth.ErrorCode(err) != berth.ENOTFOUND {
			t.Fatalf("hold after a rolled-back reserve: %v", err)
		}
		x = f.runToEnd(t, e, x.ID)
		if x.Status != berth.ExecutionSucceeded || f.available(t, flight) != 8 {
			t.Fatalf("status %s, %d seats available", x.Status, f.available(t, flight))
		}
		if got := f.effects(t, x.ID); got["reserve"] != 1 {
			t.Fatalf("reserve committed %d times", got["reserve"])
		}
	})
}

// TestRedrive puts dead executions back to work.
func TestRedrive(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		t.Run("Compensation", func(t *testing.T) {
			f := setup(t, dialect)
			s := newScript()
			broken := true
			s.failCall["confirm"] = always(berth.Errorf(berth.ESOLDOUT, "sold out"))
			s.failCall["void"] = func(int) error {
				if broken {
					return errDown
				}
				return nil
			}
			e := f.engine("runner")
			x, flight := f.booking(t, s, e, saga.StartOptions{})
			x = f.runToEnd(t, e, x.ID)
			if x.Status != berth.ExecutionDead || x.Phase != berth.PhaseCompensating || x.Step != 1 {
				t.Fatalf("before redrive: %s %s step %d", x.Status, x.Phase, x.Step)
			}
			// An operator fixes the cause and redrives.
			broken = false
			f.clock.Advance(time.Hour)
			r, err := saga.Redrive(f.ctx, f.store, x.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != berth.ExecutionRunning || r.Phase != berth.PhaseCompensating || r.Step != 1 || r.Attempt != 0 {
				t.Fatalf("redriven: %+v", r)
			}
			x = f.runToEnd(t, e, x.ID)
			if x.Status != berth.ExecutionFailed || f.available(t, flight) != 10 {
				t.Fatalf("after redrive: %s, %d seats", x.Status, f.available(t, flight))
			}
			if got := f.effects(t, x.ID); !mapsEqual(got, map[string]int{"reserve": 1, "charge": 1, "refund": 1, "void": 1, "release": 1}) {
				t.Fatalf("effects %v", got)
			}
			h := f.history(t, x.ID)
			want := seq(retried("void"), retried("void"), failed("void"), []string{"ExecutionDeadLettered:void", "ExecutionRedriven"},
				undone("void"), undone("release"), []string{"ExecutionFailed"})
			if !slices.Equal(h[len(h)-len(want):], want) {
				t.Fatalf("history ends %v, want %v", h, want)
			}

			_, err = saga.Redrive(f.ctx, f.store, x.ID)
			if berth.ErrorCode(err) != berth.ECONFLICT {
				t.Fatalf("redrive of a FAILED execution: %v", err)
			}
			_, err = saga.Redrive(f.ctx, f.store, berth.NewID())
			if berth.ErrorCode(err) != berth.ENOTFOUND {
				t.Fatalf("redrive of an unknown execution: %v", err)
			}
		})
		t.Run("Forward", func(t *testing.T) {
			f := setup(t, dialect)
			s := newScript()
			broken := true
			s.failCall["confirm"] = func(int) error {
				if broken {
					return errDown
				}
				return nil
			}
			s.opts = func(d *saga.Definition[bookState]) {
				d.Steps[2].NoCompensate = true
				d.Deadline = time.Minute
			}
			e := f.engine("runner")
			x, _ := f.booking(t, s, e, saga.StartOptions{})
			x = f.runToEnd(t, e, x.ID)
			if x.Status != berth.ExecutionDead || x.Step != 2 {
				t.Fatalf("before redrive: %s step %d", x.Status, x.Step)
			}
			r, err := saga.Redrive(f.ctx, f.store, x.ID)
			if err != nil {
				t.Fatal(err)
			}
			if r.Status != berth.ExecutionRunning || r.Step != 2 || r.Attempt != 0 || !r.Deadline.IsZero() {
				t.Fatalf("redriven: %+v", r)
			}
			// A running execution cannot be redriven.
			if _, err := saga.Redrive(f.ctx, f.store, x.ID); berth.ErrorCode(err) != berth.ECONFLICT {
				t.Fatalf("redrive of a RUNNING execution: %v", err)
			}
			broken = false
			f.clock.Advance(time.Hour)
			x = f.runToEnd(t, e, x.ID)
			if x.Status != berth.ExecutionSucceeded {
				t.Fatalf("after redrive: %s %q", x.Status, x.Error)
			}
			if got := f.effects(t, x.ID); !mapsEqual(got, map[string]int{"reserve": 1, "charge": 1, "confirm": 1}) {
				t.Fatalf("effects %v", got)
			}
			if n := s.callCount("reserve") + s.callCount("charge"); n != 2 {
				t.Fatalf("steps before the dead one ran again: %v", s.callOrder())
			}
		})
	})
}

// TestDeadline checks the hold time: forward work still pending when the
// deadline passes is compensated with a TIMEOUT.
func TestDeadline(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		for _, tt := range []struct {
			name     string
			def      time.Duration // the definition's deadline
			opt      time.Duration // the start option's
			advance  time.Duration
			timedOut bool
		}{
			{"Definition", 2 * time.Minute, 0, 3 * time.Minute, true},
			{"StartOption", 0, 2 * time.Minute, 3 * time.Minute, true},
			{"StartOptionOverrides", time.Hour, 2 * time.Minute, 3 * time.Minute, true},
			{"NotYet", 2 * time.Minute, 0, time.Minute, false},
		} {
			t.Run(tt.name, func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				s := newScript()
				s.failCall["charge"] = firstN(1, errDown)
				s.opts = func(d *saga.Definition[bookState]) { d.Deadline = tt.def }
				e := f.engine("runner")
				x, flight := f.booking(t, s, e, saga.StartOptions{Deadline: tt.opt})
				f.tick(t, e) // reserve succeeds, charge fails and waits for a retry
				if x = f.get(t, x.ID); x.Step != 1 || x.Attempt != 1 {
					t.Fatalf("step %d attempt %d", x.Step, x.Attempt)
				}
				f.clock.Advance(tt.advance)
				f.tick(t, e)
				x = f.get(t, x.ID)
				if !tt.timedOut {
					if x.Status != berth.ExecutionSucceeded {
						t.Fatalf("before the deadline: %s %q", x.Status, x.Error)
					}
					return
				}
				if x.Status != berth.ExecutionFailed || !strings.HasPrefix(x.Error, "TIMEOUT") {
					t.Fatalf("past the deadline: %s %q, want FAILED with a TIMEOUT", x.Status, x.Error)
				}
				if n := s.callCount("charge"); n != 1 {
					t.Fatalf("charge was tried %d times; past the deadline it must not run again", n)
				}
				if got := s.callOrder(); !slices.Equal(got, []string{"reserve", "charge", "void", "release"}) {
					t.Fatalf("calls %v", got)
				}
				if f.available(t, flight) != 10 {
					t.Fatalf("the seats were not released")
				}
				h := f.history(t, x.ID)
				want := seq(retried("charge"), []string{"StateFailed:charge", "CompensationStarted"}, undone("void"), undone("release"), []string{"ExecutionFailed"})
				if !slices.Equal(h[len(h)-len(want):], want) {
					t.Fatalf("history %v, want it to end %v", h, want)
				}
			})
		}
		t.Run("PastThePointOfNoReturn", func(t *testing.T) {
			t.Parallel()
			f := setup(t, dialect)
			s := newScript()
			s.failCall["confirm"] = firstN(1, errDown)
			s.opts = func(d *saga.Definition[bookState]) {
				d.Deadline = time.Minute
				d.Steps[2].NoCompensate = true
			}
			e := f.engine("runner")
			x, _ := f.booking(t, s, e, saga.StartOptions{})
			f.tick(t, e)
			f.clock.Advance(time.Hour)
			f.tick(t, e)
			if x = f.get(t, x.ID); x.Status != berth.ExecutionSucceeded {
				t.Fatalf("a NoCompensate step past the deadline: %s %q, want it to finish", x.Status, x.Error)
			}
		})
	})
}

// TestLeaseExpiry: a runner crashes holding an execution; another resumes it
// once the lease runs out, not before.
func TestLeaseExpiry(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		e := f.engine("survivor")
		x, _ := f.booking(t, s, e, saga.StartOptions{})

		var claimed []*berth.Execution
		if err := f.store.Update(f.ctx, func(tx berth.Tx) (err error) {
			claimed, err = tx.ClaimExecutions(berth.Claim{Owner: "crashed", Lease: lease, Limit: 10})
			return err
		}); err != nil {
			t.Fatal(err)
		}
		if len(claimed) != 1 {
			t.Fatalf("the crashed runner claimed %d", len(claimed))
		}
		if n := f.tick(t, e); n != 0 {
			t.Fatalf("Tick ran %d executions leased by another runner", n)
		}
		f.clock.Advance(lease - time.Microsecond)
		if n := f.tick(t, e); n != 0 {
			t.Fatalf("Tick ran %d executions just before the lease ran out", n)
		}
		f.clock.Advance(time.Microsecond)
		if n := f.tick(t, e); n != 1 {
			t.Fatalf("Tick ran %d executions after the lease ran out, want 1", n)
		}
		if x = f.get(t, x.ID); x.Status != berth.ExecutionSucceeded {
			t.Fatalf("status %s", x.Status)
		}
		if got := f.effects(t, x.ID); !mapsEqual(got, map[string]int{"reserve": 1, "charge": 1, "confirm": 1}) {
			t.Fatalf("effects %v", got)
		}
	})
}

// TestLostLease: a slow runner's lease runs out during a step and another
// runner takes the execution over and finishes it. When the slow runner's
// step returns, its commit is refused and its Tx is rolled back.
func TestLostLease(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		s := newScript()
		slow, fast := f.engine("slow"), f.engine("fast")
		saga.MustRegister(fast, s.definition())
		var fastRan int
		s.hook["charge"] = func(n int) {
			if n != 1 {
				return
			}
			// The slow runner is inside its charge Call: its lease runs out
			// and the fast runner takes over.
			f.clock.Advance(lease + time.Second)
			fastRan = f.tick(t, fast)
		}
		x, _ := f.booking(t, s, slow, saga.StartOptions{})
		f.tick(t, slow)

		if fastRan != 1 {
			t.Fatalf("the fast runner ran %d executions", fastRan)
		}
		x = f.get(t, x.ID)
		if x.Status != berth.ExecutionSucceeded {
			t.Fatalf("status %s", x.Status)
		}
		if got := s.callCount("charge"); got != 2 {
			t.Fatalf("charge called %d times, want 2 (once per runner)", got)
		}
		s.mu.Lock()
		txRuns := s.txn["charge"]
		s.mu.Unlock()
		if txRuns != 2 {
			t.Fatalf("the charge Tx ran %d times, want 2 (one rolled back)", txRuns)
		}
		if got := f.effects(t, x.ID); !mapsEqual(got, map[string]int{"reserve": 1, "charge": 1, "confirm": 1}) {
			t.Fatalf("committed effects %v: the slow runner's Tx was applied too", got)
		}
		h := f.history(t, x.ID)
		if n := strings.Count(strings.Join(h, " "), "StateSucceeded:charge"); n != 1 {
			t.Fatalf("charge succeeded %d times in the history %v", n, h)
		}
		if logs := f.logs.String(); !strings.Contains(logs, "lease lost") || !strings.Contains(logs, x.ID) {
			t.Fatalf("the slow runner did not report the lost lease:\n%s", logs)
		}
	})
}

// TestUnknownDefinition: an execution whose definition no runner knows is
// dead-lettered, not retried forever.
func TestUnknownDefinition(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		f := setup(t, dialect)
		e := f.engine("runner")
		d := newScript().definition()
		d.Name = "retired"
		x := start(t, f, d, bookState{}, saga.StartOptions{})
		if n := f.tick(t, e); n != 1 {
			t.Fatalf("Tick ran %d", n)
		}
		x = f.get(t, x.ID)
		if x.Status != berth.ExecutionDead || x.Error != "INTERNAL: unknown saga definition retired" || x.LeaseOwner != "" {
			t.Fatalf("%s %q %q", x.Status, x.Error, x.LeaseOwner)
		}
		if h := f.history(t, x.ID); !slices.Equal(h, []string{"ExecutionStarted", "ExecutionDeadLettered"}) {
			t.Fatalf("history %v", h)
		}
		f.clock.Advance(time.Hour)
		if n := f.tick(t, e); n != 0 {
			t.Fatalf("a dead execution ran again")
		}
	})
}

// TestPanics: a panicking Call or Tx is a failed attempt, not a crash, and a
// panicking Tx's writes are rolled back.
func TestPanics(t *testing.T) {
	dialects(t, func(t *testing.T, dialect string) {
		for _, where := range []string{"Call", "Tx"} {
			t.Run(where, func(t *testing.T) {
				t.Parallel()
				f := setup(t, dialect)
				s := newScript()
				boom := func(n int) error {
					if n == 1 {
						panic("boom")
					}
					return nil
				}
				if where == "Call" {
					s.failCall["charge"] = boom
				} else {
					s.failTx["charge"] = boom
				}
				e := f.engine("runner")
				x, _ := f.booking(t, s, e, saga.StartOptions{})
				f.tick(t, e)
				x = f.get(t, x.ID)
				if x.Status != berth.ExecutionRunning || x.Step != 1 || x.Attempt != 1 {
					t.Fatalf("after the panic: %s step %d attempt %d", x.Status, x.Step, x.Attempt)
				}
				var hs []*berth.HistoryEntry
				if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { hs, err = tx.ListHistory(x.ID); return err }); err != nil {
					t.Fatal(err)
				}
				if last := hs[len(hs)-1]; last.Type != berth.HistStateRetried || !strings.HasPrefix(last.Error, "INTERNAL") {
					t.Fatalf("last history entry %+v", last)
				}
				if got := f.effects(t, x.ID); got["charge"] != 0 {
					t.Fatalf("the panicking attempt committed")
				}
				x = f.runToEnd(t, e, x.ID)
				if x.Status != berth.ExecutionSucceeded || f.effects(t, x.ID)["charge"] != 1 {
					t.Fatalf("after the retry: %s, effects %v", x.Status, f.effects(t, x.ID))
				}
			})
		}
	})
}

// TestStartInFailedTransaction: an execution started in a transaction that
// rolls back does not exist.
func TestStartInFailedTransaction(t *testing.T) {
	t.Parallel()
	f := setup(t, "sqlite")
	e := f.engine("runner")
	d := newScript().definition()
	saga.MustRegister(e, d)
	errAbort := errors.New("abort")
	err := f.store.Update(f.ctx, func(tx berth.Tx) error {
		if _, err := d.Start(tx, bookState{}, saga.StartOptions{ID: "rolled-back"}); err != nil {
			return err
		}
		return errAbort
	})
	if !errors.Is(err, errAbort) {
		t.Fatal(err)
	}
	if n := f.tick(t, e); n != 0 {
		t.Fatalf("Tick ran %d executions of a rolled-back start", n)
	}
	// A chosen id makes the start idempotent: a second start is a conflict.
	start(t, f, d, bookState{}, saga.StartOptions{ID: "chosen"})
	err = f.store.Update(f.ctx, func(tx berth.Tx) error {
		_, err := d.Start(tx, bookState{}, saga.StartOptions{ID: "chosen"})
		return err
	})
	if berth.ErrorCode(err) != berth.ECONFLICT {
		t.Fatalf("second start with the same id: %v", err)
	}
}

// TestCallTimeout: a Call that outlives its Timeout fails with TIMEOUT and
// is retried.
func TestCallTimeout(t *testing.T) {
	t.Parallel()
	f := setup(t, "sqlite")
	s := newScript()
	d := s.definition()
	d.Steps[1].Timeout = 20 * time.Millisecond
	call := d.Steps[1].Call
	d.Steps[1].Call = func(ctx context.Context, r *saga.Run[bookState]) error {
		if err := call(ctx, r); err != nil {
			return err
		}
		if s.callCount("charge") == 1 {
			<-ctx.Done() // the provider hangs until the engine gives up
			return ctx.Err()
		}
		return nil
	}
	e := f.engine("runner")
	saga.MustRegister(e, d)
	x := start(t, f, d, bookState{Flight: createFlight(t, f, 10), Seats: 1}, saga.StartOptions{})
	f.tick(t, e)
	var hs []*berth.HistoryEntry
	if err := f.store.View(f.ctx, func(tx berth.Tx) (err error) { hs, err = tx.ListHistory(x.ID); return err }); err != nil {
		t.Fatal(err)
	}
	last := hs[len(hs)-1]
	if last.Type != berth.HistStateRetried || last.Error != "TIMEOUT: charge timed out after 20ms" {
		t.Fatalf("last history entry %+v", last)
	}
	if x = f.runToEnd(t, e, x.ID); x.Status != berth.ExecutionSucceeded {
		t.Fatalf("status %s", x.Status)
	}
}

// TestExclusiveReleasesLeases: an exclusive runner (the only one on its
// database) resumes at once what a crashed predecessor had leased, without
// waiting for the lease to run out.
func TestExclusiveReleasesLeases(t *testing.T) {
	t.Parallel()
	f := setup(t, "sqlite")
	s := newScript()
	x, _ := f.booking(t, s, nil, saga.StartOptions{})
	if err := f.store.Update(f.ctx, func(tx berth.Tx) error {
		_, err := tx.ClaimExecutions(berth.Claim{Owner: "crashed", Lease: time.Hour, Limit: 10})
		return err
	}); err != nil {
		t.Fatal(err)
	}
	// The fake clock stands still: only releasing the lease lets it run.
	e := saga.New(saga.Config{Store: f.store, Clock: f.clock, Owner: "restarted", Exclusive: true, Poll: 10 * time.Millisecond,
		Logger: slog.New(slog.DiscardHandler)})
	saga.MustRegister(e, s.definition())
	ctx, cancel := context.WithTimeout(f.ctx, time.Minute)
	defer cancel()
	done := make(chan error, 1)
	go func() { done <- e.Run(ctx) }()
	x, err := saga.Wait(ctx, f.store, x.ID)
	cancel()
	if err != nil || x.Status != berth.ExecutionSucceeded {
		t.Fatalf("Wait: %v %+v", err, x)
	}
	if err := <-done; err != nil {
		t.Fatal(err)
	}
}
