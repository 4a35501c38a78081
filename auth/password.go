package auth

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/berthhq/berth"
	"golang.org/x/crypto/argon2"
)

// Password length limits, in characters (Unicode code points).
const (
	MinPasswordLen = 8
	MaxPasswordLen = 128
)

// Bounds on argon2id parameters, for new hashes and for stored ones: a
// corrupt or hostile stored hash must not make a login allocate gigabytes.
const (
	maxMemoryKiB = 1 << 20 // 1 GiB
	maxTime      = 100
	minSaltLen   = 8
	minKeyLen    = 16
	maxLen       = 1024 // salt and key
)

// PasswordParams are the argon2id cost parameters of new password hashes.
// Each hash records its own parameters, so changing them affects only
// passwords hashed afterwards.
type PasswordParams struct {
	Memory  uint32 // KiB
	Time    uint32 // passes over the memory
	Threads uint8  // lanes
	SaltLen uint32 // bytes
	KeyLen  uint32 // bytes of derived key
}

// DefaultPasswordParams are the parameters for production: 64 MiB, 2 passes,
// 2 lanes, a 16-byte salt and a 32-byte key (above OWASP's argon2id
// minimum), about 0.13 s per hash on a small 2-core machine. Each hash in
// progress holds 64 MiB, so callers should bound concurrent logins (rate
// limiting does).
var DefaultPasswordParams = PasswordParams{Memory: 64 * 1024, Time: 2, Threads: 2, SaltLen: 16, KeyLen: 32}

func (p PasswordParams) validate() error {
	switch {
	case p.Time < 1 || p.Time > maxTime:
		return fmt.Errorf("time %d out of range 1–%d", p.Time, maxTime)
	case p.Threads < 1:
		return errors.New("threads must be at least 1")
	case p.Memory < 8*uint32(p.Threads) || p.Memory > maxMemoryKiB:
		return fmt.Errorf("memory %d KiB out of range %d–%d", p.Memory, 8*uint32(p.Threads), maxMemoryKiB)
	case p.SaltLen < minSaltLen || p.SaltLen > maxLen:
		return fmt.Errorf("salt length %d out of range %d–%d", p.SaltLen, minSaltLen, maxLen)
	case p.KeyLen < minKeyLen || p.KeyLen > maxLen:
		return fmt.Errorf("key length %d out of range %d–%d", p.KeyLen, minKeyLen, maxLen)
	}
	return nil
}

// HashPassword hashes pw with argon2id and a random salt, and returns the PHC
// string "$argon2id$v=19$m=<memory>,t=<time>,p=<threads>$<salt>$<hash>"
// (salt and hash in unpadded standard base64). It does not apply the
// password policy: call ValidatePassword first on new passwords.
//
// Returns an internal error if p is out of range.
func HashPassword(pw string, p PasswordParams) (string, error) {
	if err := p.validate(); err != nil {
		return "", fmt.Errorf("auth: invalid password parameters: %w", err)
	}
	salt := make([]byte, p.SaltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", fmt.Errorf("auth: password salt: %w", err)
	}
	key := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s",
		argon2.Version, p.Memory, p.Time, p.Threads,
		base64.RawStdEncoding.EncodeToString(salt), base64.RawStdEncoding.EncodeToString(key)), nil
}

// CheckPassword reports whether pw matches encoded, a hash from
// HashPassword. The derived keys are compared in constant time.
//
// Returns an internal error if encoded is not a well-formed argon2id PHC
// string with parameters in range.
func CheckPassword(encoded, pw string) (bool, error) {
	p, salt, want, err := parsePasswordHash(encoded)
	if err != nil {
		return false, fmt.Errorf("auth: malformed password hash: %w", err)
	}
	got := argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, p.KeyLen)
	return subtle.ConstantTimeCompare(got, want) == 1, nil
}

func parsePasswordHash(encoded string) (p PasswordParams, salt, key []byte, err error) {
	// "", "argon2id", "v=19", "m=..,t=..,p=..", salt, hash
	parts := strings.Split(encoded, "$")
	if len(parts) != 6 || parts[0] != "" {
		return p, nil, nil, errors.New("not a PHC string")
	} else if parts[1] != "argon2id" {
		return p, nil, nil, errors.New("not argon2id")
	} else if parts[2] != "v="+strconv.Itoa(argon2.Version) {
		return p, nil, nil, errors.New("unsupported argon2 version")
	}
	params := strings.Split(parts[3], ",")
	if len(params) != 3 {
		return p, nil, nil, errors.New("want parameters m, t and p")
	}
	var vals [3]uint64
	for i, name := range []string{"m", "t", "p"} {
		v, ok := strings.CutPrefix(params[i], name+"=")
		if !ok {
			return p, nil, nil, fmt.Errorf("parameter %d is not %s", i+1, name)
		}
		// ParseUint accepts no sign, space or "0x"; leading zeros are harmless.
		if vals[i], err = strconv.ParseUint(v, 10, 32); err != nil {
			return p, nil, nil, fmt.Errorf("parameter %s: not a number", name)
		}
	}
	if vals[2] > 255 {
		return p, nil, nil, errors.New("parameter p out of range")
	}
	if salt, err = base64.RawStdEncoding.Strict().DecodeString(parts[4]); err != nil {
		return p, nil, nil, errors.New("salt is not base64")
	}
	if key, err = base64.RawStdEncoding.Strict().DecodeString(parts[5]); err != nil {
		return p, nil, nil, errors.New("hash is not base64")
	}
	p = PasswordParams{
		Memory: uint32(vals[0]), Time: uint32(vals[1]), Threads: uint8(vals[2]),
		SaltLen: uint32(len(salt)), KeyLen: uint32(len(key)),
	}
	if err := p.validate(); err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

// ValidatePassword enforces the minimum password policy: valid UTF-8, 8 to
// 128 characters. The password is not otherwise altered or normalized.
//
// Returns INVALID with a message for the user if pw does not comply.
func ValidatePassword(pw string) error {
	if !utf8.ValidString(pw) {
		return berth.Errorf(berth.EINVALID, "password contains invalid characters")
	}
	switch n := utf8.RuneCountInString(pw); {
	case n < MinPasswordLen:
		return berth.Errorf(berth.EINVALID, "password must be at least %d characters", MinPasswordLen)
	case n > MaxPasswordLen:
		return berth.Errorf(berth.EINVALID, "password must be at most %d characters", MaxPasswordLen)
	}
	return nil
}
