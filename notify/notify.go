// Package notify delivers events to webhook subscribers. Every published
// event that a webhook wants starts one durable delivery job in the same
// transaction; the job POSTs the event as JSON, signed with HMAC-SHA256,
// retries with backoff and is dead-lettered when the receiver keeps failing.
package notify

import (
	"bytes"
	"context"
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/saga"
)

// SignatureHeader carries "t=<unix seconds>,v1=<hex HMAC-SHA256 of t + "." + body>".
const SignatureHeader = "X-Berth-Signature"

// Payload is the JSON body of a delivery.
type Payload struct {
	ID      string          `json:"id"`
	Type    string          `json:"type"`
	Source  string          `json:"source"`
	Who     string          `json:"who"`
	Subject string          `json:"subject"`
	Time    time.Time       `json:"time"`
	Detail  json.RawMessage `json:"detail"`
}

// Delivery is the state of a delivery job.
type Delivery struct {
	WebhookID string      `json:"webhookId"`
	Event     berth.Event `json:"event"`
}

// Config configures the notifier.
type Config struct {
	Store  berth.Store
	Client *http.Client // defaults to one with a 10s timeout
	Clock  berth.Clock
	Retry  saga.RetryPolicy // defaults: 8 attempts, 1s doubling to 5m
	// MaxInFlight bounds the deliveries running at once in this process
	// (default 4): the saga engine does not claim more
	// (saga.Definition.MaxConcurrent), so slow or hanging receivers hold at
	// most this many of its workers and bookings keep moving. Deliveries
	// over it wait, due, without using an attempt.
	MaxInFlight int
	// OnResult, if set, is told of every delivery attempt (for metrics).
	OnResult func(ok bool)
}

// Register installs the delivery job on e and the fan-out hook on bus.
func Register(e *saga.Engine, bus *saga.Bus, cfg Config) {
	if cfg.Client == nil {
		cfg.Client = &http.Client{Timeout: 10 * time.Second}
	}
	if cfg.Clock == nil {
		cfg.Clock = berth.SystemClock{}
	}
	if cfg.Retry.MaxAttempts == 0 {
		cfg.Retry = saga.RetryPolicy{MaxAttempts: 8, Initial: time.Second, Max: 5 * time.Minute}
	}
	if cfg.MaxInFlight <= 0 {
		cfg.MaxInFlight = 4
	}
	def := &saga.Definition[Delivery]{Name: "webhook.deliver", MaxConcurrent: cfg.MaxInFlight, Steps: []saga.Step[Delivery]{{
		Action: saga.Action[Delivery]{Name: "Deliver Webhook", Retry: cfg.Retry, Timeout: 12 * time.Second,
			Call: func(ctx context.Context, r *saga.Run[Delivery]) error {
				err := deliver(ctx, cfg, r.State, r.Execution.ID)
				if cfg.OnResult != nil {
					cfg.OnResult(err == nil)
				}
				return err
			}},
		NoCompensate: true,
	}}}
	saga.MustRegister(e, def)
	bus.Hook(func(tx berth.Tx, ev *berth.Event) error {
		hooks, err := tx.ListWebhooks()
		if err != nil {
			return err
		}
		for _, w := range hooks {
			if !w.Matches(ev.Type) {
				continue
			}
			if _, err := def.Start(tx, Delivery{WebhookID: w.ID, Event: *ev}, saga.StartOptions{ID: ev.ID + ":webhook:" + w.ID, Correlation: ev.Subject}); err != nil {
				return err
			}
		}
		return nil
	})
}

func deliver(ctx context.Context, cfg Config, d Delivery, deliveryID string) error {
	var w *berth.Webhook
	err := cfg.Store.View(ctx, func(tx berth.Tx) (err error) { w, err = tx.GetWebhook(d.WebhookID); return err })
	if berth.ErrorCode(err) == berth.ENOTFOUND {
		return nil // unsubscribed since: nothing to deliver
	} else if err != nil {
		return err
	}
	ev := d.Event
	body, err := json.Marshal(Payload{ID: ev.ID, Type: ev.Type, Source: ev.Source, Who: ev.Who, Subject: ev.Subject, Time: ev.At, Detail: ev.Detail})
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, w.URL, bytes.NewReader(body))
	if err != nil {
		return berth.Errorf(berth.EINVALID, "webhook URL is invalid")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "berth-webhooks/1")
	req.Header.Set("X-Berth-Event", ev.Type)
	req.Header.Set("X-Berth-Delivery", deliveryID)
	req.Header.Set(SignatureHeader, Sign(w.Secret, cfg.Clock.Now(), body))
	resp, err := cfg.Client.Do(req)
	if err != nil {
		return berth.Errorf(berth.EUNAVAILABLE, "webhook receiver unreachable: %s", shorten(err.Error()))
	}
	defer resp.Body.Close()
	_, _ = io.Copy(io.Discard, io.LimitReader(resp.Body, 64<<10))
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return berth.Errorf(berth.EUNAVAILABLE, "webhook receiver answered %d", resp.StatusCode)
	}
	return nil
}

func shorten(s string) string {
	if len(s) > 200 {
		return s[:200]
	}
	return s
}

// Sign returns the signature header value for body sent at t.
func Sign(secret string, t time.Time, body []byte) string {
	ts := strconv.FormatInt(t.Unix(), 10)
	m := hmac.New(sha256.New, []byte(secret))
	m.Write([]byte(ts + "."))
	m.Write(body)
	return "t=" + ts + ",v1=" + hex.EncodeToString(m.Sum(nil))
}

// Verify checks a signature header against body, rejecting signatures
// older than tolerance. Receivers can copy this logic.
func Verify(secret, header string, body []byte, now time.Time, tolerance time.Duration) error {
	var ts, sig string
	for _, part := range strings.Split(header, ",") {
		k, v, _ := strings.Cut(strings.TrimSpace(part), "=")
		switch k {
		case "t":
			ts = v
		case "v1":
			sig = v
		}
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil || sig == "" {
		return fmt.Errorf("notify: malformed signature header")
	}
	if d := now.Sub(time.Unix(sec, 0)); d > tolerance || d < -tolerance {
		return fmt.Errorf("notify: signature timestamp outside tolerance")
	}
	want := Sign(secret, time.Unix(sec, 0), body)
	if !hmac.Equal([]byte(want), []byte("t="+ts+",v1="+sig)) {
		return fmt.Errorf("notify: signature mismatch")
	}
	return nil
}
