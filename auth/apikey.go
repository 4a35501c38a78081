package auth

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/hex"
	"fmt"
	"strings"

	"github.com/berthhq/berth"
)

// API key layout: "bk_" + id + "_" + secret.
const (
	apiKeyPrefix    = "bk_"
	APIKeyIDLen     = 12
	APIKeySecretLen = 32

	// apiKeyAlphabet is URL-safe and has no '_', the separator. 32
	// characters from it carry 32·log2(62) ≈ 190 bits.
	apiKeyAlphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789"
)

// NewAPIKey returns a new API key: its id, its secret, and the full key
// "bk_<id>_<secret>" to hand to the user once. Store the id and
// HashAPIKeySecret(secret), never the secret.
func NewAPIKey() (id, secret, full string, err error) {
	if id, err = randomString(APIKeyIDLen); err != nil {
		return "", "", "", err
	}
	if secret, err = randomString(APIKeySecretLen); err != nil {
		return "", "", "", err
	}
	return id, secret, apiKeyPrefix + id + "_" + secret, nil
}

// randomString returns n characters drawn uniformly from apiKeyAlphabet.
func randomString(n int) (string, error) {
	// Bytes at or above 248 (= 4·62) are dropped so that every character is
	// equally likely.
	const limit = 256 - 256%len(apiKeyAlphabet)
	out := make([]byte, 0, n)
	buf := make([]byte, n+n/4+4)
	for len(out) < n {
		if _, err := rand.Read(buf); err != nil {
			return "", fmt.Errorf("auth: random API key: %w", err)
		}
		for _, b := range buf {
			if int(b) < limit && len(out) < n {
				out = append(out, apiKeyAlphabet[int(b)%len(apiKeyAlphabet)])
			}
		}
	}
	return string(out), nil
}

// ParseAPIKey splits a full API key "bk_<id>_<secret>" into its id and
// secret. It checks only the shape; CheckAPIKeySecret checks the secret.
//
// Returns UNAUTHENTICATED "malformed API key" if full does not have the
// shape of a key from NewAPIKey.
func ParseAPIKey(full string) (id, secret string, err error) {
	rest, ok := strings.CutPrefix(full, apiKeyPrefix)
	if ok {
		id, secret, ok = strings.Cut(rest, "_")
	}
	if !ok || len(id) != APIKeyIDLen || len(secret) != APIKeySecretLen || !inAlphabet(id) || !inAlphabet(secret) {
		return "", "", berth.Errorf(berth.EUNAUTHENTICATED, "malformed API key")
	}
	return id, secret, nil
}

func inAlphabet(s string) bool {
	for i := 0; i < len(s); i++ {
		if !strings.ContainsRune(apiKeyAlphabet, rune(s[i])) {
			return false
		}
	}
	return true
}

// HashAPIKeySecret returns the lowercase hex SHA-256 of secret, the form in
// which callers store it. A fast hash is enough: the secret is random, not
// chosen by a person.
func HashAPIKeySecret(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// CheckAPIKeySecret reports whether secret matches hash, a value from
// HashAPIKeySecret, comparing in constant time. A malformed hash matches
// nothing.
func CheckAPIKeySecret(hash, secret string) bool {
	want, err := hex.DecodeString(hash)
	if err != nil || len(want) != sha256.Size {
		return false
	}
	got := sha256.Sum256([]byte(secret))
	return subtle.ConstantTimeCompare(got[:], want) == 1
}
