package payment

import (
	"context"
	"encoding/json"
	"math/rand/v2"
	"strings"
	"time"

	"github.com/berthhq/berth"
)

// Test card tokens understood by the Simulated provider.
const (
	TokenVisa           = "tok_visa"           // authorizes, captures, refunds
	TokenMastercard     = "tok_mastercard"     // same as visa
	TokenChargeDeclined = "tok_chargeDeclined" // declined at authorization
	TokenCaptureFail    = "tok_capture_fail"   // authorizes; the capture is declined
	TokenRefundFail     = "tok_refund_fail"    // authorizes and captures; refunds fail until healed
)

const (
	kvAuth = "paysim.auth" // key: ref → simAuth
	kvOp   = "paysim.op"   // key: idempotency key → simOp
)

// Simulated is a payment provider that needs no network. Its ledger lives in
// berth's database (so it survives restarts like a real provider would), in
// its own key space. It is the outside world: berth's own records of charges
// are separate and are checked against it.
type Simulated struct {
	store berth.Store
	// FailureRate is the probability (0..1) that an operation fails with a
	// transient UNAVAILABLE error, for demos of retries.
	FailureRate float64
	// Latency is added to every operation.
	Latency time.Duration
}

// NewSimulated returns a simulated provider keeping its ledger in s.
func NewSimulated(s berth.Store) *Simulated { return &Simulated{store: s} }

// simAuth is the provider's view of one authorization.
type simAuth struct {
	Ref      string `json:"ref"`
	Token    string `json:"token"`
	Amount   int64  `json:"amount"`
	Currency string `json:"currency"`
	Status   string `json:"status"` // AUTHORIZED, CAPTURED, VOIDED
	Captured int64  `json:"captured"`
	Refunded int64  `json:"refunded"`
	Fault    string `json:"fault,omitempty"` // "capture" or "refund": that operation fails
}

// simOp remembers the outcome of an operation by its idempotency key.
type simOp struct {
	Op   string `json:"op"`
	Ref  string `json:"ref"`
	Code string `json:"code,omitempty"`
	Msg  string `json:"msg,omitempty"`
}

func (s *Simulated) pause(ctx context.Context) error {
	if s.Latency > 0 {
		select {
		case <-time.After(s.Latency):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
	if s.FailureRate > 0 && rand.Float64() < s.FailureRate {
		return berth.Errorf(berth.EUNAVAILABLE, "the payment provider is temporarily unavailable (simulated)")
	}
	return nil
}

// once runs fn for key unless it already ran, returning the recorded result
// (business outcomes are recorded; transient failures are not).
func (s *Simulated) once(ctx context.Context, key, op string, fn func(tx berth.Tx) (ref string, err error)) (string, error) {
	if key == "" {
		return "", berth.Errorf(berth.EINVALID, "an idempotency key is required")
	}
	if err := s.pause(ctx); err != nil {
		return "", err
	}
	var ref string
	var result error
	err := s.store.Update(ctx, func(tx berth.Tx) error {
		if b, err := tx.GetKV(kvOp, key); err == nil {
			var o simOp
			if err := json.Unmarshal(b, &o); err != nil {
				return err
			}
			if o.Op != op {
				result = berth.Errorf(berth.ECONFLICT, "idempotency key %q was used for %s", key, o.Op)
				return nil
			}
			ref = o.Ref
			if o.Code != "" {
				result = &berth.Error{Code: o.Code, Message: o.Msg}
			}
			return nil
		} else if berth.ErrorCode(err) != berth.ENOTFOUND {
			return err
		}
		r, err := fn(tx)
		if err != nil && !berth.IsBusiness(err) {
			return err // transient: not recorded, nothing written
		}
		o := simOp{Op: op, Ref: r}
		if err != nil {
			o.Code, o.Msg = berth.ErrorCode(err), berth.ErrorMessage(err)
		}
		b, _ := json.Marshal(o)
		ref, result = r, err
		return tx.PutKV(kvOp, key, b)
	})
	if err != nil {
		return "", err
	}
	return ref, result
}

func getAuth(tx berth.Tx, ref string) (*simAuth, error) {
	b, err := tx.GetKV(kvAuth, ref)
	if berth.ErrorCode(err) == berth.ENOTFOUND {
		return nil, berth.Errorf(berth.ENOTFOUND, "no such authorization at the payment provider")
	} else if err != nil {
		return nil, err
	}
	var a simAuth
	return &a, json.Unmarshal(b, &a)
}

func putAuth(tx berth.Tx, a *simAuth) error {
	b, _ := json.Marshal(a)
	return tx.PutKV(kvAuth, a.Ref, b)
}

// Authorize implements Provider.
func (s *Simulated) Authorize(ctx context.Context, req AuthorizeRequest) (string, error) {
	return s.once(ctx, req.Key, "authorize", func(tx berth.Tx) (string, error) {
		a := &simAuth{Ref: "sim_" + strings.ReplaceAll(berth.NewID(), "-", ""), Token: req.Token, Amount: req.Amount,
			Currency: req.Currency, Status: "AUTHORIZED"}
		switch req.Token {
		case TokenVisa, TokenMastercard:
		case TokenChargeDeclined:
			return "", berth.Errorf(berth.EPAYMENTDECLINED, "your card was declined")
		case TokenCaptureFail:
			a.Fault = "capture"
		case TokenRefundFail:
			a.Fault = "refund"
		default:
			return "", berth.Errorf(berth.EINVALID, "unknown card token; test tokens: tok_visa, tok_chargeDeclined, tok_capture_fail, tok_refund_fail")
		}
		return a.Ref, putAuth(tx, a)
	})
}

// Capture implements Provider.
func (s *Simulated) Capture(ctx context.Context, key, ref string, amount int64) error {
	_, err := s.once(ctx, key, "capture", func(tx berth.Tx) (string, error) {
		a, err := getAuth(tx, ref)
		if err != nil {
			return ref, err
		}
		switch {
		case a.Status == "CAPTURED" && a.Captured == amount:
			return ref, nil
		case a.Status != "AUTHORIZED":
			return ref, berth.Errorf(berth.ECONFLICT, "the authorization is %s", strings.ToLower(a.Status))
		case amount <= 0 || amount > a.Amount:
			return ref, berth.Errorf(berth.EPAYMENTDECLINED, "capture amount %d exceeds the authorized %d", amount, a.Amount)
		case a.Fault == "capture":
			return ref, berth.Errorf(berth.EPAYMENTDECLINED, "the issuer declined the capture")
		}
		a.Status, a.Captured = "CAPTURED", amount
		return ref, putAuth(tx, a)
	})
	return err
}

// Void implements Provider.
func (s *Simulated) Void(ctx context.Context, key, ref string) error {
	_, err := s.once(ctx, key, "void", func(tx berth.Tx) (string, error) {
		a, err := getAuth(tx, ref)
		if err != nil {
			return ref, err
		}
		switch a.Status {
		case "VOIDED":
			return ref, nil
		case "CAPTURED":
			return ref, berth.Errorf(berth.ECONFLICT, "the payment was captured; refund it instead")
		}
		a.Status = "VOIDED"
		return ref, putAuth(tx, a)
	})
	return err
}

// Refund implements Provider. A tok_refund_fail payment fails with a
// transient error (so the caller retries and finally dead-letters) until
// Heal clears the fault.
func (s *Simulated) Refund(ctx context.Context, key, ref string, amount int64) error {
	_, err := s.once(ctx, key, "refund", func(tx berth.Tx) (string, error) {
		a, err := getAuth(tx, ref)
		if err != nil {
			return ref, err
		}
		switch {
		case a.Status != "CAPTURED":
			return ref, berth.Errorf(berth.ECONFLICT, "only a captured payment can be refunded")
		case a.Refunded+amount > a.Captured && a.Refunded == amount:
			return ref, nil
		case amount <= 0 || a.Refunded+amount > a.Captured:
			return ref, berth.Errorf(berth.EINVALID, "refund of %d exceeds the captured %d", amount, a.Captured-a.Refunded)
		case a.Fault == "refund":
			return ref, berth.Errorf(berth.EUNAVAILABLE, "the payment provider could not process the refund (simulated fault)")
		}
		a.Refunded += amount
		return ref, putAuth(tx, a)
	})
	return err
}

// Heal clears the simulated faults of the given authorizations and returns
// how many it cleared. Operators use it through
// `berth payments heal` to show a dead-lettered refund being redriven.
func Heal(ctx context.Context, s berth.Store, refs ...string) (int, error) {
	n := 0
	err := s.Update(ctx, func(tx berth.Tx) error {
		n = 0
		for _, ref := range refs {
			a, err := getAuth(tx, ref)
			if err != nil {
				return err
			}
			if a.Fault != "" {
				a.Fault = ""
				n++
				if err := putAuth(tx, a); err != nil {
					return err
				}
			}
		}
		return nil
	})
	return n, err
}

// Ledger returns the provider's totals: captured and refunded amounts over
// every authorization. Tests check them against berth's own records.
func Ledger(ctx context.Context, s berth.Store, refs []string) (captured, refunded int64, err error) {
	err = s.View(ctx, func(tx berth.Tx) error {
		for _, ref := range refs {
			a, err := getAuth(tx, ref)
			if err != nil {
				return err
			}
			captured += a.Captured
			refunded += a.Refunded
		}
		return nil
	})
	return captured, refunded, err
}
