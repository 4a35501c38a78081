package payment

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// Charges keeps berth's own record of payments and moves them through the
// provider: authorize (createCharge), capture, void, refund. Every provider
// call carries an idempotency key, so a retried or replayed step has no
// second effect at the provider.
type Charges struct {
	store    berth.Store
	provider Provider
	// AuthorizeTimeout bounds Create's call to the provider, the one
	// provider call made while a client waits (the saga's calls have its
	// action timeout). Defaults to DefaultAuthorizeTimeout.
	AuthorizeTimeout time.Duration
}

// DefaultAuthorizeTimeout is the default of Charges.AuthorizeTimeout.
const DefaultAuthorizeTimeout = 10 * time.Second

// NewCharges returns the charge service.
func NewCharges(s berth.Store, p Provider) *Charges { return &Charges{store: s, provider: p} }

// Create authorizes amount on a card token for the calling customer and
// records the charge. Its id is what the client passes as paymentToken.
// Returns PAYMENT_DECLINED if the card is declined (a FAILED charge is kept
// for the audit trail), INVALID for bad input.
func (c *Charges) Create(ctx context.Context, amount int64, currency, token, idempotencyKey string) (*berth.Charge, error) {
	a := berth.ActorFromContext(ctx)
	switch {
	case a == nil:
		return nil, berth.Errorf(berth.EUNAUTHENTICATED, "sign in to pay")
	case !a.IsUser():
		return nil, berth.Errorf(berth.EFORBIDDEN, "only signed-in customers can pay")
	}
	currency = strings.ToUpper(strings.TrimSpace(currency))
	switch {
	case amount <= 0 || amount > berth.MaxChargeAmount:
		return nil, berth.Errorf(berth.EINVALID, "amount must be between 1 and %d minor units", int64(berth.MaxChargeAmount))
	case !berth.IsCurrency(currency):
		return nil, berth.Errorf(berth.EINVALID, "currency must be a 3-letter ISO 4217 code")
	case token == "" || len(token) > 200:
		return nil, berth.Errorf(berth.EINVALID, "token must be a card token of 1 to 200 characters")
	case len(idempotencyKey) > 200:
		return nil, berth.Errorf(berth.EINVALID, "the idempotency key is limited to 200 characters")
	}
	ch := &berth.Charge{ID: "ch_" + strings.ReplaceAll(berth.NewID(), "-", ""), Customer: a.Subject, Amount: amount, Currency: currency}
	key := "authorize:" + ch.ID
	if idempotencyKey != "" {
		// The id derives from the customer and key, so that two concurrent
		// requests with the same key cannot record two charges for one
		// authorization (which would pay for two bookings with one capture).
		sum := sha256.Sum256([]byte(a.Subject + "\x00" + idempotencyKey))
		ch.ID = "ch_" + hex.EncodeToString(sum[:16])
		// The same customer and key: the same charge.
		key = "authorize:" + a.Subject + ":" + idempotencyKey
		var existing *berth.Charge
		err := c.store.View(ctx, func(tx berth.Tx) error {
			b, err := tx.GetKV("charge.idem", a.Subject+":"+idempotencyKey)
			if err != nil {
				return err
			}
			existing, err = tx.GetCharge(string(b))
			return err
		})
		if err == nil {
			return replay(existing, amount, currency)
		} else if berth.ErrorCode(err) != berth.ENOTFOUND {
			return nil, err
		}
	}
	timeout := c.AuthorizeTimeout
	if timeout <= 0 {
		timeout = DefaultAuthorizeTimeout
	}
	actx, cancel := context.WithTimeout(ctx, timeout)
	ref, err := c.provider.Authorize(actx, AuthorizeRequest{Key: key, Token: token, Amount: amount, Currency: currency})
	cancel()
	if err != nil && !berth.IsBusiness(err) {
		return nil, berth.Errorf(berth.EUNAVAILABLE, "the payment provider is unavailable; try again")
	}
	ch.ProviderRef, ch.Status = ref, berth.ChargeAuthorized
	if err != nil {
		ch.Status, ch.FailureCode = berth.ChargeFailed, berth.ErrorCode(err)
	}
	if uerr := c.store.Update(ctx, func(tx berth.Tx) error {
		if err := tx.CreateCharge(ch); err != nil {
			return err
		}
		if idempotencyKey != "" {
			return tx.PutKV("charge.idem", a.Subject+":"+idempotencyKey, []byte(ch.ID))
		}
		return nil
	}); uerr != nil {
		if idempotencyKey != "" && berth.ErrorCode(uerr) == berth.ECONFLICT {
			// A concurrent request with the same key recorded it first.
			var existing *berth.Charge
			if c.store.View(ctx, func(tx berth.Tx) (err error) { existing, err = tx.GetCharge(ch.ID); return err }) == nil {
				return replay(existing, amount, currency)
			}
		}
		return nil, uerr
	}
	if err != nil {
		return nil, err
	}
	return ch, nil
}

// Capture collects amount of charge id at the provider. key makes it
// idempotent. It does not change berth's record: the caller records the
// outcome in its own transaction (see Record*).
func (c *Charges) Capture(ctx context.Context, key string, ch *berth.Charge, amount int64) error {
	return c.provider.Capture(ctx, key, ch.ProviderRef, amount)
}

// Undo gives the customer's money back whatever state the payment is in:
// voids an authorization, refunds a capture. It returns the status the
// charge reached and the amount refunded.
func (c *Charges) Undo(ctx context.Context, key string, ch *berth.Charge, captured int64) (berth.ChargeStatus, int64, error) {
	switch ch.Status {
	case berth.ChargeVoided, berth.ChargeRefunded, berth.ChargeFailed:
		return ch.Status, ch.Refunded, nil
	case berth.ChargeAuthorized:
		err := c.provider.Void(ctx, key+":void", ch.ProviderRef)
		if err == nil {
			return berth.ChargeVoided, 0, nil
		}
		if berth.ErrorCode(err) != berth.ECONFLICT {
			return "", 0, err
		}
		// Captured at the provider although our record does not say so yet
		// (the capture's reply was lost): refund it.
	}
	if captured <= 0 {
		captured = ch.Captured
	}
	if err := c.provider.Refund(ctx, key+":refund", ch.ProviderRef, captured); err != nil {
		return "", 0, err
	}
	return berth.ChargeRefunded, captured, nil
}

// replay answers a createCharge whose idempotency key names an existing
// charge: the same charge for the same request; CONFLICT for another
// amount or currency; the provider's refusal again for a charge that
// failed (not the FAILED charge as if it had been authorized).
func replay(ch *berth.Charge, amount int64, currency string) (*berth.Charge, error) {
	switch {
	case ch.Amount != amount || ch.Currency != currency:
		return nil, berth.Errorf(berth.ECONFLICT, "this idempotency key was used for a charge of %d %s", ch.Amount, ch.Currency)
	case ch.Status == berth.ChargeFailed:
		code := ch.FailureCode
		if code == "" {
			code = berth.EPAYMENTDECLINED
		}
		return nil, berth.Errorf(code, "the payment provider refused this charge (%s); use another idempotency key to try again", code)
	}
	return ch, nil
}
