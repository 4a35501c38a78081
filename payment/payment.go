// Package payment talks to payment providers. Provider is the contract; the
// Simulated provider (the default) keeps its ledger in berth's own database
// and recognises test card tokens that produce each failure a booking must
// survive. Every operation is idempotent by the key the caller passes.
package payment

import (
	"context"
)

// AuthorizeRequest asks the provider to hold Amount on a card token.
type AuthorizeRequest struct {
	Key      string // idempotency key
	Token    string // card token from the client, e.g. "tok_visa"
	Amount   int64  // minor units
	Currency string // ISO 4217
}

// Provider is a payment provider. Errors are *berth.Error:
// PAYMENT_DECLINED for refusals (not retried), INVALID for bad requests,
// NOT_FOUND for unknown references, CONFLICT for an operation the
// authorization's state does not allow, and UNAVAILABLE (or any other error)
// for transient failures that a retry may fix.
type Provider interface {
	// Authorize holds the amount on the card and returns the provider's
	// reference for the authorization.
	Authorize(ctx context.Context, req AuthorizeRequest) (ref string, err error)
	// Capture collects amount (at most the authorized amount) of ref.
	// Capturing what is already captured with the same amount succeeds.
	Capture(ctx context.Context, key, ref string, amount int64) error
	// Void releases an authorization that was not captured. CONFLICT if it
	// was captured; voiding a voided authorization succeeds.
	Void(ctx context.Context, key, ref string) error
	// Refund returns amount of a captured payment. Refunding what is
	// already refunded succeeds.
	Refund(ctx context.Context, key, ref string, amount int64) error
}
