package saga

import (
	"context"
	"slices"

	"github.com/berthhq/berth"
)

// Handler reacts to an event inside the transaction that completes its
// job, so its writes happen exactly once per event.
type Handler func(ctx context.Context, tx berth.Tx, ev *berth.Event) error

// Hook runs inside the transaction that publishes an event (for cheap
// fan-out, such as starting one delivery job per webhook).
type Hook func(tx berth.Tx, ev *berth.Event) error

// Bus stores events and routes them to subscribers. Each subscriber runs as
// a durable one-step job, started in the transaction that stores the event
// (a transactional outbox): an event is never lost and never handled twice.
type Bus struct {
	engine *Engine
	subs   []subscription
	hooks  []Hook
}

type subscription struct {
	types []string
	def   *Definition[EventJob]
}

// EventJob is the state of an event handler's job.
type EventJob struct {
	Event berth.Event `json:"event"`
}

// NewBus returns a bus whose jobs run on e.
func NewBus(e *Engine) *Bus { return &Bus{engine: e} }

// Subscribe runs h for every published event whose type is in types ("*"
// for all), as a job named "on:"+name, retried with retry and then
// dead-lettered.
func (b *Bus) Subscribe(name string, types []string, retry RetryPolicy, h Handler) {
	d := &Definition[EventJob]{Name: "on:" + name, Steps: []Step[EventJob]{{
		Action: Action[EventJob]{Name: name, Retry: retry, Tx: func(ctx context.Context, tx berth.Tx, r *Run[EventJob]) error {
			return h(ctx, tx, &r.State.Event)
		}},
		NoCompensate: true,
	}}}
	MustRegister(b.engine, d)
	b.subs = append(b.subs, subscription{types: types, def: d})
}

// Hook runs h inside every publishing transaction.
func (b *Bus) Hook(h Hook) { b.hooks = append(b.hooks, h) }

// Publish stores ev and starts its subscribers' jobs, in tx. Call
// Store.Notify after the commit to run them at once.
func (b *Bus) Publish(tx berth.Tx, ev *berth.Event) error {
	if err := tx.AppendEvent(ev); err != nil {
		return err
	}
	for _, h := range b.hooks {
		if err := h(tx, ev); err != nil {
			return err
		}
	}
	for _, s := range b.subs {
		if !slices.Contains(s.types, "*") && !slices.Contains(s.types, ev.Type) {
			continue
		}
		if _, err := s.def.Start(tx, EventJob{Event: *ev}, StartOptions{ID: ev.ID + ":" + s.def.Name, Correlation: ev.Subject}); err != nil {
			return err
		}
	}
	return nil
}
