package store

import (
	"github.com/berthhq/berth"
)

func (t *tx) Reserve(h *berth.Hold) (bool, error) {
	if h.Quantity <= 0 {
		return false, berth.Errorf(berth.EINVALID, "quantity must be positive")
	}
	if existing, err := t.GetHold(h.Key); err == nil {
		*h = *existing
		return false, nil
	} else if berth.ErrorCode(err) != berth.ENOTFOUND {
		return false, err
	}
	// The one guarded statement that takes capacity.
	res, err := t.exec(`UPDATE resources SET available = available - $1, updated_at = $2 WHERE id = $3 AND available >= $1`,
		h.Quantity, micros(t.now), h.ResourceID)
	if err != nil {
		return false, err
	}
	if affected(res) == 0 {
		if _, err := t.GetResource(h.ResourceID); err != nil {
			return false, err
		}
		return false, berth.Errorf(berth.ESOLDOUT, "not enough seats left")
	}
	h.Status, h.CreatedAt, h.UpdatedAt = berth.HoldHeld, t.now, t.now
	if _, err := t.exec(`INSERT INTO holds (key, resource_id, booking_id, quantity, status, created_at, updated_at) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		h.Key, h.ResourceID, h.BookingID, h.Quantity, string(h.Status), micros(h.CreatedAt), micros(h.UpdatedAt)); err != nil {
		return false, err
	}
	return true, nil
}

func (t *tx) Release(key string) (bool, error) {
	h, err := t.GetHold(key)
	if berth.ErrorCode(err) == berth.ENOTFOUND {
		return false, nil
	} else if err != nil {
		return false, err
	}
	res, err := t.exec(`UPDATE holds SET status = 'RELEASED', updated_at = $1 WHERE key = $2 AND status = 'HELD'`, micros(t.now), key)
	if err != nil {
		return false, err
	}
	if affected(res) == 0 {
		return false, nil
	}
	res, err = t.exec(`UPDATE resources SET available = available + $1, updated_at = $2 WHERE id = $3 AND available + $1 <= capacity`,
		h.Quantity, micros(t.now), h.ResourceID)
	if err != nil {
		return false, err
	}
	if affected(res) == 0 {
		return false, berth.Errorf(berth.ECONFLICT, "releasing the hold would exceed the resource's capacity")
	}
	return true, nil
}

func (t *tx) GetHold(key string) (*berth.Hold, error) {
	var h berth.Hold
	var status string
	var c, u int64
	err := t.queryRow(`SELECT key, resource_id, booking_id, quantity, status, created_at, updated_at FROM holds WHERE key = $1`, key).
		Scan(&h.Key, &h.ResourceID, &h.BookingID, &h.Quantity, &status, &c, &u)
	if err != nil {
		return nil, t.notFound(err, "hold")
	}
	h.Status, h.CreatedAt, h.UpdatedAt = berth.HoldStatus(status), fromMicros(c), fromMicros(u)
	return &h, nil
}

const bookingCols = `id, resource_id, customer, quantity, status, COALESCE(reference, ''), payment_token, price, currency, checked_in,
COALESCE(idempotency_key, ''), execution_id, created_at, updated_at, version`

func scanBooking(s scanner) (*berth.Booking, error) {
	var b berth.Booking
	var status string
	var checked int
	var c, u int64
	err := s.Scan(&b.ID, &b.ResourceID, &b.Customer, &b.Quantity, &status, &b.Reference, &b.PaymentToken, &b.Price, &b.Currency,
		&checked, &b.IdempotencyKey, &b.ExecutionID, &c, &u, &b.Version)
	if err != nil {
		return nil, err
	}
	b.Status, b.CheckedIn, b.CreatedAt, b.UpdatedAt = berth.BookingStatus(status), checked != 0, fromMicros(c), fromMicros(u)
	return &b, nil
}

func (t *tx) CreateBooking(b *berth.Booking) error {
	if b.ID == "" {
		b.ID = berth.NewID()
	}
	b.CreatedAt, b.UpdatedAt, b.Version = t.now, t.now, 1
	_, err := t.exec(`INSERT INTO bookings (id, resource_id, customer, quantity, status, reference, payment_token, price, currency,
checked_in, idempotency_key, execution_id, created_at, updated_at, version)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15)`,
		b.ID, b.ResourceID, b.Customer, b.Quantity, string(b.Status), nullable(b.Reference), b.PaymentToken, b.Price, b.Currency,
		boolInt(b.CheckedIn), nullable(b.IdempotencyKey), b.ExecutionID, micros(b.CreatedAt), micros(b.UpdatedAt), b.Version)
	return err
}

func (t *tx) GetBooking(id string) (*berth.Booking, error) {
	b, err := scanBooking(t.queryRow(`SELECT `+bookingCols+` FROM bookings WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "booking")
	}
	return b, nil
}

func (t *tx) GetBookingByIdempotencyKey(customer, key string) (*berth.Booking, error) {
	b, err := scanBooking(t.queryRow(`SELECT `+bookingCols+` FROM bookings WHERE customer = $1 AND idempotency_key = $2`, customer, key))
	if err != nil {
		return nil, t.notFound(err, "booking")
	}
	return b, nil
}

func (t *tx) GetBookingByPaymentToken(chargeID string) (*berth.Booking, error) {
	b, err := scanBooking(t.queryRow(`SELECT `+bookingCols+` FROM bookings WHERE payment_token = $1`, chargeID))
	if err != nil {
		return nil, t.notFound(err, "booking")
	}
	return b, nil
}

func (t *tx) UpdateBooking(b *berth.Booking) error {
	res, err := t.exec(`UPDATE bookings SET status = $1, reference = $2, checked_in = $3, execution_id = $4, updated_at = $5, version = version + 1
WHERE id = $6 AND version = $7`,
		string(b.Status), nullable(b.Reference), boolInt(b.CheckedIn), b.ExecutionID, micros(t.now), b.ID, b.Version)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		if _, err := t.GetBooking(b.ID); err != nil {
			return err
		}
		return berth.Errorf(berth.ECONFLICT, "the booking was changed by someone else; read it again")
	}
	b.Version++
	b.UpdatedAt = t.now
	return nil
}

func (t *tx) DeleteBooking(id string) error {
	if _, err := t.exec(`DELETE FROM tickets WHERE booking_id = $1`, id); err != nil {
		return err
	}
	res, err := t.exec(`DELETE FROM bookings WHERE id = $1`, id)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return berth.Errorf(berth.ENOTFOUND, "booking not found")
	}
	return nil
}

func (t *tx) ListBookings(q berth.BookingQuery) ([]*berth.Booking, error) {
	var a args
	var where []string
	key := "''"
	if q.Customer != "" {
		key = "status"
		where = append(where, "customer = "+a.add(q.Customer))
		if q.StatusFrom != "" {
			where = append(where, "status >= "+a.add(q.StatusFrom))
		}
		if q.StatusTo != "" {
			where = append(where, "status <= "+a.add(q.StatusTo))
		}
	}
	order := keyset(&a, &where, key, "id", q.Page)
	return queryAll(t, scanBooking, `SELECT `+bookingCols+` FROM bookings`+whereClause(where)+order, a...)
}

func (t *tx) CreateTicket(k *berth.Ticket) error {
	if k.ID == "" {
		k.ID = berth.NewID()
	}
	k.CreatedAt, k.UpdatedAt = t.now, t.now
	_, err := t.exec(`INSERT INTO tickets (id, booking_id, resource_id, code, status, checked_in, created_at, updated_at)
VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`,
		k.ID, k.BookingID, k.ResourceID, k.Code, string(k.Status), boolInt(k.CheckedIn), micros(k.CreatedAt), micros(k.UpdatedAt))
	return err
}

func scanTicket(s scanner) (*berth.Ticket, error) {
	var k berth.Ticket
	var status string
	var checked int
	var c, u int64
	if err := s.Scan(&k.ID, &k.BookingID, &k.ResourceID, &k.Code, &status, &checked, &c, &u); err != nil {
		return nil, err
	}
	k.Status, k.CheckedIn, k.CreatedAt, k.UpdatedAt = berth.TicketStatus(status), checked != 0, fromMicros(c), fromMicros(u)
	return &k, nil
}

func (t *tx) ListTickets(bookingID string) ([]*berth.Ticket, error) {
	return queryAll(t, scanTicket, `SELECT id, booking_id, resource_id, code, status, checked_in, created_at, updated_at
FROM tickets WHERE booking_id = $1 ORDER BY id`, bookingID)
}

func (t *tx) UpdateTicket(k *berth.Ticket) error {
	res, err := t.exec(`UPDATE tickets SET status = $1, checked_in = $2, updated_at = $3 WHERE id = $4`,
		string(k.Status), boolInt(k.CheckedIn), micros(t.now), k.ID)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		return berth.Errorf(berth.ENOTFOUND, "ticket not found")
	}
	k.UpdatedAt = t.now
	return nil
}

const chargeCols = `id, customer, amount, currency, status, provider_ref, captured, refunded, booking_id, failure_code, created_at, updated_at, version`

func scanCharge(s scanner) (*berth.Charge, error) {
	var c berth.Charge
	var status string
	var cr, up int64
	err := s.Scan(&c.ID, &c.Customer, &c.Amount, &c.Currency, &status, &c.ProviderRef, &c.Captured, &c.Refunded, &c.BookingID,
		&c.FailureCode, &cr, &up, &c.Version)
	if err != nil {
		return nil, err
	}
	c.Status, c.CreatedAt, c.UpdatedAt = berth.ChargeStatus(status), fromMicros(cr), fromMicros(up)
	return &c, nil
}

func (t *tx) CreateCharge(c *berth.Charge) error {
	if c.ID == "" {
		c.ID = "ch_" + berth.NewID()
	}
	c.CreatedAt, c.UpdatedAt, c.Version = t.now, t.now, 1
	_, err := t.exec(`INSERT INTO charges (id, customer, amount, currency, status, provider_ref, captured, refunded, booking_id, failure_code,
created_at, updated_at, version) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
		c.ID, c.Customer, c.Amount, c.Currency, string(c.Status), c.ProviderRef, c.Captured, c.Refunded, c.BookingID, c.FailureCode,
		micros(c.CreatedAt), micros(c.UpdatedAt), c.Version)
	return err
}

func (t *tx) GetCharge(id string) (*berth.Charge, error) {
	c, err := scanCharge(t.queryRow(`SELECT `+chargeCols+` FROM charges WHERE id = $1`, id))
	if err != nil {
		return nil, t.notFound(err, "charge")
	}
	return c, nil
}

func (t *tx) UpdateCharge(c *berth.Charge) error {
	res, err := t.exec(`UPDATE charges SET status = $1, provider_ref = $2, captured = $3, refunded = $4, booking_id = $5, failure_code = $6,
updated_at = $7, version = version + 1 WHERE id = $8 AND version = $9`,
		string(c.Status), c.ProviderRef, c.Captured, c.Refunded, c.BookingID, c.FailureCode, micros(t.now), c.ID, c.Version)
	if err != nil {
		return err
	}
	if affected(res) == 0 {
		if _, err := t.GetCharge(c.ID); err != nil {
			return err
		}
		return berth.Errorf(berth.ECONFLICT, "the charge was changed by someone else; read it again")
	}
	c.Version++
	c.UpdatedAt = t.now
	return nil
}
