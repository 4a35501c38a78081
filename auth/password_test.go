package auth

import (
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

// cheap are argon2id parameters that make tests fast; never use them for
// real passwords.
var cheap = PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}

func TestPassword_HashAndCheck(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		pw    string
		check string
		want  bool
	}{
		{"right", "correct horse battery", "correct horse battery", true},
		{"wrong", "correct horse battery", "correct horse battery!", false},
		{"case matters", "Password123", "password123", false},
		{"empty attempt", "Password123", "", false},
		{"unicode", "pässwörd-日本語", "pässwörd-日本語", true},
		{"unicode differs", "pässwörd-日本語", "passwörd-日本語", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			h, err := HashPassword(tt.pw, cheap)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.HasPrefix(h, "$argon2id$v=19$m=64,t=1,p=1$") {
				t.Fatalf("hash %q is not an argon2id PHC string with the given parameters", h)
			}
			ok, err := CheckPassword(h, tt.check)
			if err != nil {
				t.Fatal(err)
			}
			if ok != tt.want {
				t.Fatalf("CheckPassword = %v, want %v", ok, tt.want)
			}
		})
	}
}

func TestPassword_SaltedAndParametersRecorded(t *testing.T) {
	t.Parallel()
	h1, err := HashPassword("same password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	h2, err := HashPassword("same password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	if h1 == h2 {
		t.Fatal("two hashes of one password are equal: salt is not random")
	}
	// A hash made with other parameters still checks: they travel with it.
	other := PasswordParams{Memory: 128, Time: 2, Threads: 2, SaltLen: 24, KeyLen: 48}
	h3, err := HashPassword("same password", other)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(h3, "$argon2id$v=19$m=128,t=2,p=2$") {
		t.Fatalf("hash %q", h3)
	}
	for _, h := range []string{h1, h2, h3} {
		if ok, err := CheckPassword(h, "same password"); !ok || err != nil {
			t.Fatalf("CheckPassword(%q) = %v, %v", h, ok, err)
		}
	}
}

func TestCheckPassword_Malformed(t *testing.T) {
	t.Parallel()
	good, err := HashPassword("password", cheap)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(good, "$") // "", argon2id, v=19, params, salt, hash
	join := func(p ...string) string { return strings.Join(p, "$") }
	salt, hash := parts[4], parts[5]
	tests := []struct {
		name    string
		encoded string
	}{
		{"empty", ""},
		{"plain text", "password"},
		{"bcrypt", "$2a$10$N9qo8uLOickgx2ZMRZoMyeIjZAgcfl7p92ldGxad68LJZdL17lhWy"},
		{"argon2i", join("", "argon2i", "v=19", "m=64,t=1,p=1", salt, hash)},
		{"old version", join("", "argon2id", "v=16", "m=64,t=1,p=1", salt, hash)},
		{"no version", join("", "argon2id", "m=64,t=1,p=1", salt, hash)},
		{"parameters reordered", join("", "argon2id", "v=19", "t=1,m=64,p=1", salt, hash)},
		{"parameter missing", join("", "argon2id", "v=19", "m=64,t=1", salt, hash)},
		{"parameter not a number", join("", "argon2id", "v=19", "m=64,t=x,p=1", salt, hash)},
		{"negative parameter", join("", "argon2id", "v=19", "m=-64,t=1,p=1", salt, hash)},
		{"zero time", join("", "argon2id", "v=19", "m=64,t=0,p=1", salt, hash)},
		{"zero threads", join("", "argon2id", "v=19", "m=64,t=1,p=0", salt, hash)},
		{"too many threads", join("", "argon2id", "v=19", "m=4096,t=1,p=256", salt, hash)},
		{"memory below 8 per thread", join("", "argon2id", "v=19", "m=8,t=1,p=2", salt, hash)},
		// Must fail before allocating 4 TiB.
		{"huge memory", join("", "argon2id", "v=19", "m=4294967295,t=1,p=1", salt, hash)},
		{"huge time", join("", "argon2id", "v=19", "m=64,t=4294967295,p=1", salt, hash)},
		{"salt not base64", join("", "argon2id", "v=19", "m=64,t=1,p=1", "***", hash)},
		{"salt padded", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt+"==", hash)},
		{"salt too short", join("", "argon2id", "v=19", "m=64,t=1,p=1", "c2FsdA", hash)},
		{"hash not base64", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, "!!")},
		{"hash too short", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, "aGFzaA")},
		{"empty hash", join("", "argon2id", "v=19", "m=64,t=1,p=1", salt, "")},
		{"extra field", good + "$x"},
		{"leading text", "x" + good},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			ok, err := CheckPassword(tt.encoded, "password")
			if err == nil || ok {
				t.Fatalf("CheckPassword = %v, %v; want false and an error", ok, err)
			}
		})
	}
}

func TestHashPassword_BadParams(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name string
		p    PasswordParams
	}{
		{"zero", PasswordParams{}},
		{"zero time", PasswordParams{Memory: 64, Time: 0, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{"zero threads", PasswordParams{Memory: 64, Time: 1, Threads: 0, SaltLen: 16, KeyLen: 32}},
		{"too little memory", PasswordParams{Memory: 8, Time: 1, Threads: 4, SaltLen: 16, KeyLen: 32}},
		{"too much memory", PasswordParams{Memory: 1<<20 + 1, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 32}},
		{"short salt", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 4, KeyLen: 32}},
		{"short key", PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 8}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if h, err := HashPassword("password", tt.p); err == nil {
				t.Fatalf("hashed with bad parameters: %q", h)
			}
		})
	}
}

func TestDefaultPasswordParams(t *testing.T) {
	t.Parallel()
	if err := DefaultPasswordParams.validate(); err != nil {
		t.Fatal(err)
	}
	if DefaultPasswordParams.Memory < 19*1024 || DefaultPasswordParams.SaltLen < 16 || DefaultPasswordParams.KeyLen < 32 {
		t.Fatalf("defaults %+v are below OWASP's minimum", DefaultPasswordParams)
	}
}

func TestValidatePassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		pw      string
		wantErr string // "" for valid
	}{
		{"empty", "", "password must be at least 8 characters"},
		{"7 characters", "1234567", "password must be at least 8 characters"},
		{"8 characters", "12345678", ""},
		{"128 characters", strings.Repeat("a", 128), ""},
		{"129 characters", strings.Repeat("a", 129), "password must be at most 128 characters"},
		{"7 characters in 14 bytes", "ééééééé", "password must be at least 8 characters"},
		{"8 characters in 16 bytes", "éééééééé", ""},
		{"128 characters in 384 bytes", strings.Repeat("日", 128), ""},
		{"spaces count", "        ", ""},
		{"invalid UTF-8", "abcdefgh\xff", "password contains invalid characters"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			err := ValidatePassword(tt.pw)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("got %v, want valid", err)
				}
				return
			}
			if berth.ErrorCode(err) != berth.EINVALID || berth.ErrorMessage(err) != tt.wantErr {
				t.Fatalf("got %v, want INVALID %q", err, tt.wantErr)
			}
		})
	}
}

func BenchmarkHashPassword_Default(b *testing.B) {
	for b.Loop() {
		if _, err := HashPassword("correct horse battery staple", DefaultPasswordParams); err != nil {
			b.Fatal(err)
		}
	}
}
