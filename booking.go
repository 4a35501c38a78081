package berth

import (
	"crypto/rand"
	"time"
)

// BookingStatus is the life cycle of a booking. The set is closed.
type BookingStatus string

const (
	BookingUnconfirmed BookingStatus = "UNCONFIRMED"
	BookingConfirmed   BookingStatus = "CONFIRMED"
	BookingCancelled   BookingStatus = "CANCELLED"
	BookingExpired     BookingStatus = "EXPIRED"
)

// ParseBookingStatus parses a status name from the edge.
func ParseBookingStatus(s string) (BookingStatus, error) {
	switch st := BookingStatus(s); st {
	case BookingUnconfirmed, BookingConfirmed, BookingCancelled, BookingExpired:
		return st, nil
	}
	return "", Errorf(EINVALID, "unknown booking status %q", truncate(s, 30))
}

// Booking is a customer's claim on Quantity units of one resource.
type Booking struct {
	ID             string
	ResourceID     string
	Customer       string // the owner's subject id, from the verified token
	Quantity       int
	Status         BookingStatus
	Reference      string // 6 URL-safe characters, assigned once on confirmation
	PaymentToken   string // the charge id that pays for it
	Price          int64  // total, computed by the server from the resource's price
	Currency       string
	CheckedIn      bool
	IdempotencyKey string
	ExecutionID    string // the saga execution that books it
	CreatedAt      time.Time
	UpdatedAt      time.Time
	Version        int64 // optimistic concurrency; bumped by every update
}

// TicketStatus is the life cycle of one booked unit.
type TicketStatus string

const (
	TicketBooked   TicketStatus = "BOOKED"
	TicketCanceled TicketStatus = "CANCELED"
	TicketExpired  TicketStatus = "EXPIRED"
	TicketArchived TicketStatus = "ARCHIVED"
)

// Ticket is one unit of a booking (one seat), so that one seat can be
// cancelled, moved or checked in on its own.
type Ticket struct {
	ID         string
	BookingID  string
	ResourceID string
	Code       string
	Status     TicketStatus
	CheckedIn  bool
	CreatedAt  time.Time
	UpdatedAt  time.Time
}

const referenceAlphabet = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789" // URL-safe, no look-alikes (0/O, 1/I)

// NewReference returns a random 6-character booking reference.
func NewReference() string {
	var b [6]byte
	_, _ = rand.Read(b[:])
	for i := range b {
		b[i] = referenceAlphabet[int(b[i])%len(referenceAlphabet)]
	}
	return string(b[:])
}
