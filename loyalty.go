package berth

import "time"

// Loyalty tiers and their thresholds in points.
const (
	LevelBronze = "bronze"
	LevelSilver = "silver"
	LevelGold   = "gold"

	SilverPoints = 50000
	GoldPoints   = 100000
)

// LoyaltyKind says whether an entry earns or revokes points.
type LoyaltyKind string

const (
	LoyaltyEarn   LoyaltyKind = "EARN"
	LoyaltyRevoke LoyaltyKind = "REVOKE"
)

// LoyaltyEntry is one line of the points ledger. There is at most one entry
// of each kind per booking, which makes earning and revoking idempotent.
type LoyaltyEntry struct {
	BookingID string
	Customer  string
	Kind      LoyaltyKind
	Points    int64 // positive; a REVOKE subtracts it
	At        time.Time
}

// Loyalty is a customer's standing.
type Loyalty struct {
	Customer        string
	Points          int64
	Level           string
	RemainingPoints int64 // to the next tier; 0 at gold
}

// NewLoyalty computes the level and remaining points for a balance.
func NewLoyalty(customer string, points int64) Loyalty {
	l := Loyalty{Customer: customer, Points: points}
	switch {
	case points >= GoldPoints:
		l.Level = LevelGold
	case points >= SilverPoints:
		l.Level, l.RemainingPoints = LevelSilver, GoldPoints-points
	default:
		l.Level, l.RemainingPoints = LevelBronze, SilverPoints-points
	}
	return l
}

// Webhook is a subscription: matching events are POSTed to URL, signed with
// HMAC-SHA256 using Secret.
type Webhook struct {
	ID         string
	URL        string
	Secret     string
	EventTypes []string // empty: every event
	CreatedBy  string
	CreatedAt  time.Time
}

// Matches reports whether the webhook wants events of type t.
func (w *Webhook) Matches(t string) bool {
	if len(w.EventTypes) == 0 {
		return true
	}
	for _, e := range w.EventTypes {
		if e == t || e == "*" {
			return true
		}
	}
	return false
}
