package berth

import "time"

// ChargeStatus is the life cycle of a payment. The set is closed.
type ChargeStatus string

const (
	ChargeAuthorized ChargeStatus = "AUTHORIZED"
	ChargeCaptured   ChargeStatus = "CAPTURED"
	ChargeRefunded   ChargeStatus = "REFUNDED"
	ChargeVoided     ChargeStatus = "VOIDED"
	ChargeFailed     ChargeStatus = "FAILED"
)

// Charge is a payment authorization made by a customer with a card token.
// Its id is what the client passes as a booking's paymentToken. The amount
// captured is always computed by the server; it never exceeds Amount.
type Charge struct {
	ID          string
	Customer    string
	Amount      int64 // authorized, minor units
	Currency    string
	Status      ChargeStatus
	ProviderRef string // the provider's id for the authorization
	Captured    int64
	Refunded    int64
	BookingID   string
	FailureCode string
	CreatedAt   time.Time
	UpdatedAt   time.Time
	Version     int64
}

// MaxChargeAmount bounds a single charge (minor units).
const MaxChargeAmount = 100_000_000_00
