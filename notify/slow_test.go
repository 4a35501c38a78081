package notify_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/internal/faults"
	"github.com/berthhq/berth/notify"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// flaky is a hand-written fake webhook receiver that is down (drops the
// connection), hangs (answers only when the client gives up) or is up.
type flaky struct {
	mode      atomic.Int32 // modeUp, modeDown, modeHang
	requests  atomic.Int64
	mu        sync.Mutex
	delivered map[string]int // delivery id → times received while up
	release   chan struct{}  // closed at the end: hanging requests return
}

const (
	modeUp int32 = iota
	modeDown
	modeHang
)

func (f *flaky) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	f.requests.Add(1)
	switch f.mode.Load() {
	case modeDown:
		if c, _, err := w.(http.Hijacker).Hijack(); err == nil {
			c.Close() // connection reset, as a receiver that is down
		}
		return
	case modeHang:
		select {
		case <-r.Context().Done():
		case <-f.release:
		}
		return
	}
	f.mu.Lock()
	f.delivered[r.Header.Get("X-Berth-Delivery")]++
	f.mu.Unlock()
}

// inFlight is the deliveries' HTTP transport: it counts the requests in
// progress on berth's side (a receiver may notice a client gave up later).
type inFlight struct {
	now, max atomic.Int64
}

func (c *inFlight) RoundTrip(r *http.Request) (*http.Response, error) {
	n := c.now.Add(1)
	defer c.now.Add(-1)
	for m := c.max.Load(); n > m && !c.max.CompareAndSwap(m, n); m = c.max.Load() {
	}
	return http.DefaultTransport.RoundTrip(r)
}

type slowRig struct {
	client *inFlight
	db     *store.DB
	engine *saga.Engine
	bus    *saga.Bus
	rcv    *flaky
	url    string
	probe  *saga.Definition[struct{}]
	cancel context.CancelFunc
	done   chan struct{}
}

// newSlowRig runs a real engine (real time) with webhook deliveries and a
// trivial "probe" saga standing for bookings.
func newSlowRig(t *testing.T, clientTimeout time.Duration, retry saga.RetryPolicy) *slowRig {
	t.Helper()
	quiet := slog.New(slog.DiscardHandler)
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "n.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	r := &slowRig{db: db, rcv: &flaky{delivered: map[string]int{}, release: make(chan struct{})}, done: make(chan struct{})}
	srv := httptest.NewServer(r.rcv)
	r.url = srv.URL
	r.engine = saga.New(saga.Config{Store: db, Workers: 8, Poll: 20 * time.Millisecond, Logger: quiet})
	r.bus = saga.NewBus(r.engine)
	r.client = &inFlight{}
	notify.Register(r.engine, r.bus, notify.Config{Store: db, Client: &http.Client{Timeout: clientTimeout, Transport: r.client}, Retry: retry})
	r.probe = &saga.Definition[struct{}]{Name: "probe", Steps: []saga.Step[struct{}]{{Action: saga.Action[struct{}]{Name: "probe",
		Tx: func(context.Context, berth.Tx, *saga.Run[struct{}]) error { return nil }}}}}
	saga.MustRegister(r.engine, r.probe)
	ctx, cancel := context.WithCancel(context.Background())
	r.cancel = cancel
	go func() { _ = r.engine.Run(ctx); close(r.done) }()
	t.Cleanup(func() {
		r.rcv.mode.Store(modeUp)
		close(r.rcv.release)
		cancel()
		<-r.done
		srv.Close()
		db.Close()
	})
	if err := db.Update(ctx, func(tx berth.Tx) error {
		return tx.CreateWebhook(&berth.Webhook{URL: srv.URL, Secret: "s3cret", CreatedBy: "admin"})
	}); err != nil {
		t.Fatal(err)
	}
	return r
}

// publish publishes n events (n deliveries) in one transaction.
func (r *slowRig) publish(t *testing.T, n int) {
	t.Helper()
	ctx := context.Background()
	err := r.db.Update(ctx, func(tx berth.Tx) error {
		for range n {
			if err := r.bus.Publish(tx, &berth.Event{ID: berth.NewID(), Type: berth.EventBookingConfirmed, Source: "t", Who: "C#a", Subject: "b"}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	r.db.Notify(ctx)
}

// counts returns the deliveries by status.
func (r *slowRig) counts(t *testing.T) map[berth.ExecutionStatus]int {
	t.Helper()
	out := map[berth.ExecutionStatus]int{}
	err := r.db.View(context.Background(), func(tx berth.Tx) error {
		xs, err := tx.ListExecutions(berth.ExecutionQuery{Definition: "webhook.deliver", Page: berth.Page{Limit: 1000}})
		for _, x := range xs {
			out[x.Status]++
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// probes starts n probe sagas 20 ms apart and returns how long each took
// to end, sorted, and the most goroutines seen meanwhile.
func (r *slowRig) probes(t *testing.T, n int) ([]time.Duration, int) {
	t.Helper()
	ctx := context.Background()
	var lat []time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	maxG := 0
	for range n {
		var x *berth.Execution
		if err := r.db.Update(ctx, func(tx berth.Tx) (err error) { x, err = r.probe.Start(tx, struct{}{}, saga.StartOptions{}); return err }); err != nil {
			t.Fatal(err)
		}
		r.db.Notify(ctx)
		start := time.Now()
		wg.Go(func() {
			wctx, cancel := context.WithTimeout(ctx, 20*time.Second)
			defer cancel()
			if _, err := saga.Wait(wctx, r.db, x.ID); err != nil {
				t.Error(err)
			}
			mu.Lock()
			lat = append(lat, time.Since(start).Round(time.Millisecond))
			mu.Unlock()
		})
		maxG = max(maxG, runtime.NumGoroutine())
		time.Sleep(20 * time.Millisecond)
	}
	wg.Wait()
	slices.Sort(lat)
	return lat, maxG
}

// A receiver that hangs holds at most notify.Config.MaxInFlight (4) of the
// engine's 8 workers, each for the client timeout: other sagas (bookings)
// keep running at full speed, deliveries over the limit wait without using
// an attempt, every delivery is tried its 2 attempts and dead-letters, no
// goroutines pile up, and once the receiver is back a redrive delivers
// every event exactly once.
func TestHangingReceiverDoesNotStarveSagas(t *testing.T) {
	t.Parallel()
	const clientTimeout = 500 * time.Millisecond
	r := newSlowRig(t, clientTimeout, saga.RetryPolicy{MaxAttempts: 2, Initial: 100 * time.Millisecond, Jitter: -1})
	ctx := context.Background()
	before, _ := r.probes(t, 10)
	r.rcv.mode.Store(modeHang)
	base := runtime.NumGoroutine()
	r.publish(t, 40)
	time.Sleep(100 * time.Millisecond) // the deliveries take their workers
	during, maxG := r.probes(t, 30)
	t.Logf("probe sagas: p50 %s, p99 %s with the receiver up; p50 %s, p99 %s while it hangs (client timeout %s); goroutines %d → at most %d",
		before[len(before)/2], before[len(before)*99/100], during[len(during)/2], during[len(during)*99/100], clientTimeout, base, maxG)
	// Without the limit the 8 workers spend 40 deliveries × 2 attempts ×
	// 0.5 s = 5 s hanging, and the probes wait for them. With it at most
	// MaxInFlight (4) workers hang at once and every probe ends (saga.Wait
	// above fails the test after 20 s); the probes' latency is logged, not
	// asserted: it depends on the machine's load.
	if got := r.client.max.Load(); got > 4 {
		t.Errorf("%d deliveries in flight at once, more than MaxInFlight (4)", got)
	}
	if maxG > base+80 {
		t.Errorf("goroutines piled up: %d at the start, %d during the outage", base, maxG)
	}

	// Every delivery ends dead after its attempts (4 at a time: 40 × 2 ×
	// 0.5 s ÷ 4 ≈ 10 s); none is stuck, and each was really tried twice.
	waitFor(t, "every delivery to dead-letter", 60*time.Second, func() bool { return r.counts(t)[berth.ExecutionDead] == 40 })
	_ = r.db.View(ctx, func(tx berth.Tx) error {
		xs, err := tx.ListExecutions(berth.ExecutionQuery{Definition: "webhook.deliver", Page: berth.Page{Limit: 100}})
		for _, x := range xs {
			if x.Attempt != 2 || !strings.Contains(x.Error, "UNAVAILABLE") {
				t.Errorf("delivery %s dead after attempt %d: %s", x.ID, x.Attempt, x.Error)
			}
		}
		return err
	})

	// The receiver comes back; the operator redrives: each event arrives once.
	r.rcv.mode.Store(modeUp)
	n, err := faults.RedriveAll(ctx, r.db)
	if err != nil || n != 40 {
		t.Fatalf("redrove %d: %v", n, err)
	}
	waitFor(t, "every delivery after the redrive", 30*time.Second, func() bool { return r.counts(t)[berth.ExecutionSucceeded] == 40 })
	r.rcv.mu.Lock()
	defer r.rcv.mu.Unlock()
	if len(r.rcv.delivered) != 40 {
		t.Fatalf("%d distinct deliveries received, want 40", len(r.rcv.delivered))
	}
	for id, c := range r.rcv.delivered {
		if c != 1 {
			t.Fatalf("delivery %s received %d times", id, c)
		}
	}
}

// A receiver that is down (connection reset): the delivery retries with
// exponential backoff, dead-letters after its attempts, and a redrive
// delivers it once the receiver is back.
func TestDownReceiverBacksOffAndRecovers(t *testing.T) {
	t.Parallel()
	r := newSlowRig(t, time.Second, saga.RetryPolicy{MaxAttempts: 4, Initial: 50 * time.Millisecond, Jitter: -1})
	r.rcv.mode.Store(modeDown)
	r.publish(t, 1)
	waitFor(t, "the delivery to dead-letter", 10*time.Second, func() bool { return r.counts(t)[berth.ExecutionDead] == 1 })
	ctx := context.Background()
	ids, err := faults.DeadIDs(ctx, r.db)
	if err != nil || len(ids) != 1 {
		t.Fatalf("dead letters %v %v", ids, err)
	}
	var h []*berth.HistoryEntry
	_ = r.db.View(ctx, func(tx berth.Tx) (err error) { h, err = tx.ListHistory(ids[0]); return err })
	var delays []string
	var tries []time.Time
	for _, e := range h {
		switch e.Type {
		case berth.HistStateRetried:
			delays = append(delays, e.Detail)
		case berth.HistStateEntered:
			tries = append(tries, e.At)
		}
		if e.Type == berth.HistStateRetried && !strings.Contains(e.Error, "UNAVAILABLE: webhook receiver unreachable") {
			t.Errorf("retry error %q", e.Error)
		}
	}
	if strings.Join(delays, ", ") != "retry in 50ms, retry in 100ms, retry in 200ms" || len(tries) != 4 {
		t.Fatalf("retries: %v, attempts %d", delays, len(tries))
	}
	for i := 1; i < len(tries); i++ {
		if gap, want := tries[i].Sub(tries[i-1]), 50*time.Millisecond<<(i-1); gap < want {
			t.Errorf("attempt %d came %s after the previous one, before its %s backoff", i+1, gap, want)
		}
	}
	if got := r.rcv.requests.Load(); got != 4 {
		t.Errorf("the receiver saw %d attempts, want 4", got)
	}
	r.rcv.mode.Store(modeUp)
	if _, err := saga.Redrive(ctx, r.db, ids[0]); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the redriven delivery", 10*time.Second, func() bool { return r.counts(t)[berth.ExecutionSucceeded] == 1 })
	if _, err := saga.Redrive(ctx, r.db, ids[0]); berth.ErrorCode(err) != berth.ECONFLICT {
		t.Fatalf("redriving a delivered webhook again: %v", err)
	}
	r.rcv.mu.Lock()
	defer r.rcv.mu.Unlock()
	if len(r.rcv.delivered) != 1 {
		t.Fatalf("delivered %v", r.rcv.delivered)
	}
}
