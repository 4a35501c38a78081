package berth

import (
	"encoding/json"
	"time"
)

// Event types emitted by the airline vertical.
const (
	EventBookingRequested = "BookingRequested"
	EventBookingConfirmed = "BookingConfirmed"
	EventBookingFailed    = "BookingFailed"
	EventBookingCancelled = "BookingCancelled"
	EventSeatReserved     = "SeatReserved"
	EventSeatReleased     = "SeatReleased"
	EventPaymentCaptured  = "PaymentCaptured"
	EventPaymentVoided    = "PaymentVoided"
	EventPaymentRefunded  = "PaymentRefunded"
	EventLoyaltyChanged   = "LoyaltyChanged"
)

// Event is an immutable fact. The event table is both the audit log and the
// event store; an event is written in the same transaction as the change it
// describes. Seq orders events globally (assigned by the store).
type Event struct {
	Seq     int64
	ID      string
	Type    string
	Source  string          // the emitting component, e.g. "berth.airline"
	Who     string          // "C#<customer>" for customer facts
	Subject string          // the id of the thing it is about (a booking id)
	Detail  json.RawMessage // JSON object
	At      time.Time
}

// Customer returns the Who value for a customer subject.
func Customer(subject string) string { return "C#" + subject }
