package berth

import (
	"strings"
	"time"
	"unicode"
)

// AccountStatus is the state of an account. The set is closed.
type AccountStatus string

const (
	AccountUnverified  AccountStatus = "UNVERIFIED"
	AccountVerified    AccountStatus = "VERIFIED"
	AccountDeactivated AccountStatus = "DEACTIVATED"
)

// Account is a person known to berth's own issuer. Its ID is the token
// subject. Accounts of external issuers are not stored.
type Account struct {
	ID           string
	Username     string // unique, case-insensitive (stored lower case)
	Email        string // unique when set, stored lower case
	PasswordHash string
	Groups       []string
	Status       AccountStatus
	CreatedAt    time.Time
}

// NormalizeUsername lower-cases and validates a username: 3–64 characters of
// letters, digits, '.', '-' and '_'.
func NormalizeUsername(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	if len(s) < 3 || len(s) > 64 {
		return "", Errorf(EINVALID, "username must be 3 to 64 characters")
	}
	for _, r := range s {
		if !(unicode.IsLetter(r) || unicode.IsDigit(r) || r == '.' || r == '-' || r == '_') || r > unicode.MaxASCII {
			return "", Errorf(EINVALID, "username may contain only letters, digits, '.', '-' and '_'")
		}
	}
	return s, nil
}

// NormalizeEmail lower-cases and loosely validates an email address.
func NormalizeEmail(s string) (string, error) {
	s = strings.ToLower(strings.TrimSpace(s))
	at := strings.LastIndexByte(s, '@')
	if len(s) > 254 || at < 1 || at == len(s)-1 || strings.ContainsAny(s, " \t\r\n") {
		return "", Errorf(EINVALID, "email is not a valid address")
	}
	return s, nil
}

// APIKey grants public reads to a program. Only a hash of its secret is kept.
type APIKey struct {
	ID         string
	Name       string
	SecretHash string
	CreatedAt  time.Time
	ExpiresAt  time.Time // zero: never
	RevokedAt  time.Time // zero: active
}

// Active reports whether the key may be used at now.
func (k *APIKey) Active(now time.Time) bool {
	return k.RevokedAt.IsZero() && (k.ExpiresAt.IsZero() || now.Before(k.ExpiresAt))
}
