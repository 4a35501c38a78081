package graphql

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"net/url"
	"strings"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
	"github.com/berthhq/berth/saga"
)

// Operator fields: saga executions, the dead-letter queue and webhooks.
// They have no service of their own, so they check for Admin here.

func (r queryResolver) BookingExecution(ctx context.Context, bookingID string, which *string) (*generated.Execution, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	name := deref(which)
	if name == "" {
		name = airline.ProcessBooking
	}
	if name != airline.ProcessBooking && name != airline.CancelBooking {
		return nil, berth.Errorf(berth.EINVALID, "saga must be %s or %s", airline.ProcessBooking, airline.CancelBooking)
	}
	x, h, err := r.air.Execution(ctx, bookingID, name)
	if err != nil {
		return nil, err
	}
	return toExecution(x, h), nil
}

func (r queryResolver) Execution(ctx context.Context, id string) (*generated.Execution, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var x *berth.Execution
	var h []*berth.HistoryEntry
	err := r.store.View(ctx, func(tx berth.Tx) (err error) {
		if x, err = tx.GetExecution(id); err != nil {
			return err
		}
		h, err = tx.ListHistory(id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return toExecution(x, h), nil
}

func (r queryResolver) DeadLetters(ctx context.Context, limit *int, nextToken *string) (*generated.ExecutionConnection, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	q := berth.ExecutionQuery{Status: berth.ExecutionDead, Page: berth.Page{Limit: airline.DefaultPageSize}}
	if limit != nil {
		if *limit < 1 || *limit > airline.MaxPageSize {
			return nil, berth.Errorf(berth.EINVALID, "limit must be between 1 and %d", airline.MaxPageSize)
		}
		q.Limit = *limit
	}
	if deref(nextToken) != "" {
		c, err := airline.DecodeToken(*nextToken)
		if err != nil {
			return nil, err
		}
		q.After = &berth.Cursor{ID: c.ID}
	}
	want := q.Limit
	q.Limit++ // one more tells whether there is a next page
	var xs []*berth.Execution
	if err := r.store.View(ctx, func(tx berth.Tx) (err error) { xs, err = tx.ListExecutions(q); return err }); err != nil {
		return nil, err
	}
	out := &generated.ExecutionConnection{Items: make([]*generated.Execution, 0, min(len(xs), want))}
	if len(xs) > want {
		xs = xs[:want]
		out.NextToken = airline.EncodeToken(&berth.Cursor{ID: xs[want-1].ID})
	}
	for _, x := range xs {
		out.Items = append(out.Items, toExecution(x, nil))
	}
	return out, nil
}

func (r mutationResolver) RedriveExecution(ctx context.Context, id string) (*generated.Execution, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	x, err := saga.Redrive(ctx, r.store, id)
	if err != nil {
		return nil, err
	}
	return toExecution(x, nil), nil
}

// History returns the history read with the execution, or reads it.
func (r executionResolver) History(ctx context.Context, x *generated.Execution) ([]*generated.HistoryEntry, error) {
	if x.History != nil {
		return x.History, nil
	}
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var h []*berth.HistoryEntry
	if err := r.store.View(ctx, func(tx berth.Tx) (err error) { h, err = tx.ListHistory(x.ID); return err }); err != nil {
		return nil, err
	}
	return toHistory(h), nil
}

// toExecution converts an execution; h is its history if it was read
// (nil: the history resolver reads it when asked).
func toExecution(x *berth.Execution, h []*berth.HistoryEntry) *generated.Execution {
	out := &generated.Execution{
		ID:          x.ID,
		Definition:  x.Definition,
		Status:      string(x.Status),
		Phase:       string(x.Phase),
		Step:        x.Step,
		Attempt:     x.Attempt,
		Error:       optString(x.Error),
		Correlation: optString(x.Correlation),
		Input:       optString(string(x.Input)),
		State:       optString(string(x.State)),
		CreatedAt:   formatTime(x.CreatedAt),
		UpdatedAt:   formatTime(x.UpdatedAt),
		NextRunAt:   optTime(x.NextRunAt),
	}
	if h != nil {
		out.History = toHistory(h)
	}
	return out
}

// toHistory converts history entries; the result is never nil.
func toHistory(h []*berth.HistoryEntry) []*generated.HistoryEntry {
	out := make([]*generated.HistoryEntry, len(h))
	for i, e := range h {
		out[i] = &generated.HistoryEntry{Seq: int(e.Seq), Type: string(e.Type), State: optString(e.State), Attempt: e.Attempt,
			Detail: optString(e.Detail), Error: optString(e.Error), At: formatTime(e.At)}
	}
	return out
}

func (r queryResolver) Webhooks(ctx context.Context) ([]*generated.Webhook, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var ws []*berth.Webhook
	if err := r.store.View(ctx, func(tx berth.Tx) (err error) { ws, err = tx.ListWebhooks(); return err }); err != nil {
		return nil, err
	}
	out := make([]*generated.Webhook, len(ws))
	for i, w := range ws {
		out[i] = toWebhook(w, false)
	}
	return out, nil
}

// Webhook limits.
const (
	maxWebhookURL        = 2048
	maxWebhookEventTypes = 50
	maxEventTypeLen      = 100
)

// RegisterWebhook subscribes a URL to events with a new random secret,
// returned only here.
func (r mutationResolver) RegisterWebhook(ctx context.Context, rawURL string, eventTypes []string) (*generated.Webhook, error) {
	a, err := berth.RequireAdmin(ctx)
	if err != nil {
		return nil, err
	}
	if err := validateWebhookURL(rawURL); err != nil {
		return nil, err
	}
	types, err := validateEventTypes(eventTypes)
	if err != nil {
		return nil, err
	}
	secret := make([]byte, 32)
	if _, err := rand.Read(secret); err != nil {
		return nil, err
	}
	w := &berth.Webhook{ID: berth.NewID(), URL: rawURL, Secret: "whsec_" + hex.EncodeToString(secret), EventTypes: types, CreatedBy: a.Subject}
	if err := r.store.Update(ctx, func(tx berth.Tx) error { return tx.CreateWebhook(w) }); err != nil {
		return nil, err
	}
	return toWebhook(w, true), nil
}

func (r mutationResolver) DeleteWebhook(ctx context.Context, id string) (*generated.Webhook, error) {
	if _, err := berth.RequireAdmin(ctx); err != nil {
		return nil, err
	}
	var w *berth.Webhook
	err := r.store.Update(ctx, func(tx berth.Tx) (err error) {
		if w, err = tx.GetWebhook(id); err != nil {
			return err
		}
		return tx.DeleteWebhook(id)
	})
	if err != nil {
		return nil, err
	}
	return toWebhook(w, false), nil
}

func toWebhook(w *berth.Webhook, withSecret bool) *generated.Webhook {
	out := &generated.Webhook{ID: w.ID, URL: w.URL, EventTypes: w.EventTypes, CreatedAt: formatTime(w.CreatedAt)}
	if out.EventTypes == nil {
		out.EventTypes = []string{}
	}
	if withSecret {
		out.Secret = optString(w.Secret)
	}
	return out
}

// validateWebhookURL accepts absolute http and https URLs with a host.
func validateWebhookURL(s string) error {
	u, err := url.Parse(s)
	switch {
	case len(s) > maxWebhookURL:
		return berth.Errorf(berth.EINVALID, "url is limited to %d characters", maxWebhookURL)
	case err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Hostname() == "":
		return berth.Errorf(berth.EINVALID, "url must be an http or https URL with a host")
	}
	return nil
}

// validateEventTypes checks and de-duplicates event type names. The store
// keeps them comma-separated, so a name cannot hold a comma.
func validateEventTypes(types []string) ([]string, error) {
	if len(types) > maxWebhookEventTypes {
		return nil, berth.Errorf(berth.EINVALID, "at most %d event types", maxWebhookEventTypes)
	}
	out := make([]string, 0, len(types))
	seen := map[string]bool{}
	for _, t := range types {
		t = strings.TrimSpace(t)
		switch {
		case t == "" || len(t) > maxEventTypeLen || strings.ContainsAny(t, ", \t\r\n"):
			return nil, berth.Errorf(berth.EINVALID, "event types are names such as BookingConfirmed (1 to %d characters, no commas or spaces)", maxEventTypeLen)
		case seen[t]:
			continue
		}
		seen[t] = true
		out = append(out, t)
	}
	return out, nil
}
