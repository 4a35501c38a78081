package notify_test

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/notify"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

type clock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *clock) Now() time.Time          { c.mu.Lock(); defer c.mu.Unlock(); return c.now }
func (c *clock) Advance(d time.Duration) { c.mu.Lock(); c.now = c.now.Add(d); c.mu.Unlock() }

// receiver is a hand-written fake webhook receiver: it fails the first
// failures requests, then verifies and records what it gets.
type receiver struct {
	mu       sync.Mutex
	failures int
	got      []notify.Payload
	bad      int
	clock    *clock
}

func (r *receiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	r.mu.Lock()
	defer r.mu.Unlock()
	body, _ := io.ReadAll(req.Body)
	if r.failures > 0 {
		r.failures--
		http.Error(w, "down", http.StatusBadGateway)
		return
	}
	if err := notify.Verify("s3cret", req.Header.Get(notify.SignatureHeader), body, r.clock.Now(), 5*time.Minute); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	_ = json.Unmarshal(body, &p)
	r.got = append(r.got, p)
}

func TestWebhookDelivery(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &clock{now: time.Now().UTC()}
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "n.db"), Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rcv := &receiver{failures: 2, clock: c}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := saga.New(saga.Config{Store: db, Clock: c})
	bus := saga.NewBus(e)
	notify.Register(e, bus, notify.Config{Store: db, Clock: c, Retry: saga.RetryPolicy{MaxAttempts: 3, Initial: time.Second, Jitter: -1}})

	err = db.Update(ctx, func(tx berth.Tx) error {
		if err := tx.CreateWebhook(&berth.Webhook{URL: srv.URL, Secret: "s3cret", EventTypes: []string{berth.EventBookingConfirmed}, CreatedBy: "admin"}); err != nil {
			return err
		}
		if err := bus.Publish(tx, &berth.Event{Type: berth.EventBookingFailed, Source: "t", Who: "C#a", Subject: "b1"}); err != nil {
			return err
		}
		return bus.Publish(tx, &berth.Event{Type: berth.EventBookingConfirmed, Source: "t", Who: "C#a", Subject: "b1",
			Detail: json.RawMessage(`{"Booking":{"Status":"confirmed"}}`)})
	})
	if err != nil {
		t.Fatal(err)
	}
	for range 4 { // two failures with backoff, then the delivery
		if _, err := e.Tick(ctx); err != nil {
			t.Fatal(err)
		}
		c.Advance(3 * time.Second)
	}
	rcv.mu.Lock()
	defer rcv.mu.Unlock()
	if len(rcv.got) != 1 || rcv.got[0].Type != berth.EventBookingConfirmed || string(rcv.got[0].Detail) != `{"Booking":{"Status":"confirmed"}}` || rcv.bad != 0 {
		t.Fatalf("received %+v (bad signatures %d)", rcv.got, rcv.bad)
	}
}

func TestWebhookDeadLettered(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	c := &clock{now: time.Now().UTC()}
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "n.db"), Clock: c})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	rcv := &receiver{failures: 100, clock: c}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	e := saga.New(saga.Config{Store: db, Clock: c})
	bus := saga.NewBus(e)
	notify.Register(e, bus, notify.Config{Store: db, Clock: c, Retry: saga.RetryPolicy{MaxAttempts: 2, Initial: time.Second, Jitter: -1}})
	_ = db.Update(ctx, func(tx berth.Tx) error {
		_ = tx.CreateWebhook(&berth.Webhook{URL: srv.URL, Secret: "s3cret", CreatedBy: "admin"})
		return bus.Publish(tx, &berth.Event{Type: berth.EventBookingConfirmed, Source: "t", Who: "C#a", Subject: "b1"})
	})
	for range 3 {
		_, _ = e.Tick(ctx)
		c.Advance(3 * time.Second)
	}
	var dead int
	_ = db.View(ctx, func(tx berth.Tx) (err error) { dead, err = tx.CountExecutions(berth.ExecutionDead); return err })
	if dead != 1 {
		t.Fatalf("%d dead deliveries, want 1", dead)
	}
}

func TestSignature(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	h := notify.Sign("k", now, []byte("body"))
	if err := notify.Verify("k", h, []byte("body"), now, time.Minute); err != nil {
		t.Fatal(err)
	}
	for name, tc := range map[string]struct {
		secret, header, body string
		at                   time.Time
	}{
		"wrong secret":  {"x", h, "body", now},
		"tampered body": {"k", h, "bodY", now},
		"too old":       {"k", h, "body", now.Add(time.Hour)},
		"malformed":     {"k", "v1=abc", "body", now},
		"empty":         {"k", "", "body", now},
		"bad timestamp": {"k", "t=x,v1=00", "body", now},
	} {
		if err := notify.Verify(tc.secret, tc.header, []byte(tc.body), tc.at, time.Minute); err == nil {
			t.Errorf("%s: accepted", name)
		}
	}
}
