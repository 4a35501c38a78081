package store

import (
	"encoding/json"
	"strings"

	"github.com/berthhq/berth"
)

func (t *tx) AppendEvent(e *berth.Event) error {
	if e.ID == "" {
		e.ID = berth.NewID()
	}
	if e.At.IsZero() {
		e.At = t.now
	}
	if len(e.Detail) == 0 {
		e.Detail = json.RawMessage("{}")
	}
	err := t.queryRow(`INSERT INTO events (id, type, source, who, subject, detail, at) VALUES ($1, $2, $3, $4, $5, $6, $7) RETURNING seq`,
		e.ID, e.Type, e.Source, e.Who, e.Subject, string(e.Detail), micros(e.At)).Scan(&e.Seq)
	if err != nil {
		return t.db.dialect.classify(err)
	}
	return nil
}

func (t *tx) ListEvents(q berth.EventQuery) ([]*berth.Event, error) {
	var a args
	where := []string{"seq > " + a.add(q.AfterSeq)}
	if q.Who != "" {
		where = append(where, "who = "+a.add(q.Who))
	}
	if q.Subject != "" {
		where = append(where, "subject = "+a.add(q.Subject))
	}
	if q.Type != "" {
		where = append(where, "type = "+a.add(q.Type))
	}
	return queryAll(t, func(s scanner) (*berth.Event, error) {
		var e berth.Event
		var detail string
		var at int64
		if err := s.Scan(&e.Seq, &e.ID, &e.Type, &e.Source, &e.Who, &e.Subject, &detail, &at); err != nil {
			return nil, err
		}
		e.Detail, e.At = json.RawMessage(detail), fromMicros(at)
		return &e, nil
	}, `SELECT seq, id, type, source, who, subject, detail, at FROM events`+whereClause(where)+` ORDER BY seq LIMIT `+a.add(limit(q.Limit)), a...)
}

func (t *tx) AddLoyaltyEntry(e *berth.LoyaltyEntry) (bool, error) {
	if e.At.IsZero() {
		e.At = t.now
	}
	res, err := t.exec(`INSERT INTO loyalty_entries (booking_id, kind, customer, points, at) VALUES ($1, $2, $3, $4, $5)
ON CONFLICT (booking_id, kind) DO NOTHING`, e.BookingID, string(e.Kind), e.Customer, e.Points, micros(e.At))
	if err != nil {
		return false, err
	}
	return affected(res) == 1, nil
}

func (t *tx) LoyaltyPoints(customer string) (int64, error) {
	var p int64
	err := t.queryRow(`SELECT COALESCE(SUM(CASE WHEN kind = 'EARN' THEN points ELSE -points END), 0) FROM loyalty_entries WHERE customer = $1`,
		customer).Scan(&p)
	return p, err
}

const webhookCols = `id, url, secret, event_types, created_by, created_at`

func scanWebhook(s scanner) (*berth.Webhook, error) {
	var w berth.Webhook
	var types string
	var c int64
	if err := s.Scan(&w.ID, &w.URL, &w.Secret, &types, &w.CreatedBy, &c); err != nil {
		return nil, err
	}
	w.EventTypes, w.CreatedAt = splitList(types), fromMicros(c)
	return &w, nil
}

func (t *tx) CreateWebhook(w *berth.Webhook) error {
	if w.ID == "" {
		w.ID = berth.NewID()
	}
	w.CreatedAt = t.now
	_, err := t.exec(`INSERT INTO webhooks (id, url, secret, event_types, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)`,
		w.ID, w.URL, w.Secret, strings.Join(w.EventTypes, ","), w.CreatedBy, micros(w.CreatedAt))
	return err
}

func (t *tx) GetWebhook(id string) (*berth.Webhook, error) {
	w, err := scanWebhook(t.queryRow(`SELECT `+webhookCols+` FROM webhooks WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "webhook")
	}
	return w, nil
}

func (t *tx) ListWebhooks() ([]*berth.Webhook, error) {
	return queryAll(t, scanWebhook, `SELECT `+webhookCols+` FROM webhooks ORDER BY id`)
}

func (t *tx) DeleteWebhook(id string) error {
	res, err := t.exec(`DELETE FROM webhooks WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return berth.Errorf(berth.ENOTFOUND, "webhook not found")
	}
	return nil
}

func (t *tx) GetKV(namespace, key string) ([]byte, error) {
	var v string
	if err := t.queryRow(`SELECT value FROM kv WHERE namespace = $1 AND key = $2`, namespace, key).Scan(&v); err != nil {
		return nil, t.notFound(err, "key")
	}
	return []byte(v), nil
}

func (t *tx) PutKV(namespace, key string, value []byte) error {
	_, err := t.exec(`INSERT INTO kv (namespace, key, value) VALUES ($1, $2, $3) ON CONFLICT (namespace, key) DO UPDATE SET value = excluded.value`,
		namespace, key, string(value))
	return err
}
