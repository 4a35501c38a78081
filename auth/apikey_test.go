package auth

import (
	"strings"
	"testing"

	"github.com/berthhq/berth"
)

func TestNewAPIKey(t *testing.T) {
	t.Parallel()
	seen := make(map[string]bool)
	chars := make(map[rune]bool)
	for range 500 {
		id, secret, full, err := NewAPIKey()
		if err != nil {
			t.Fatal(err)
		}
		if len(id) != 12 || len(secret) != 32 {
			t.Fatalf("id %q (%d), secret %q (%d); want 12 and 32 characters", id, len(id), secret, len(secret))
		}
		if full != "bk_"+id+"_"+secret {
			t.Fatalf("full key %q does not join id %q and secret %q", full, id, secret)
		}
		if strings.ContainsAny(id+secret, "_+/=") {
			t.Fatalf("id or secret contains a separator or non-URL-safe character: %q", full)
		}
		if seen[id] || seen[secret] {
			t.Fatalf("repeated id or secret in %q", full)
		}
		seen[id], seen[secret] = true, true
		for _, c := range id + secret {
			chars[c] = true
		}

		gotID, gotSecret, err := ParseAPIKey(full)
		if err != nil || gotID != id || gotSecret != secret {
			t.Fatalf("ParseAPIKey(%q) = %q, %q, %v", full, gotID, gotSecret, err)
		}
	}
	// 22,000 draws from 62 characters: every one turns up unless the
	// generator is biased or broken.
	if len(chars) != len(apiKeyAlphabet) {
		t.Fatalf("%d distinct characters in generated keys, want %d", len(chars), len(apiKeyAlphabet))
	}
}

func TestParseAPIKey_Malformed(t *testing.T) {
	t.Parallel()
	id, secret := strings.Repeat("A", 12), strings.Repeat("b", 32)
	if _, _, err := ParseAPIKey("bk_" + id + "_" + secret); err != nil {
		t.Fatalf("well-formed key refused: %v", err)
	}
	tests := []struct {
		name string
		key  string
	}{
		{"empty", ""},
		{"prefix only", "bk_"},
		{"no prefix", id + "_" + secret},
		{"wrong prefix", "pk_" + id + "_" + secret},
		{"upper-case prefix", "BK_" + id + "_" + secret},
		{"no separator", "bk_" + id + secret},
		{"short id", "bk_" + id[1:] + "_" + secret},
		{"long id", "bk_" + id + "A_" + secret},
		{"short secret", "bk_" + id + "_" + secret[1:]},
		{"long secret", "bk_" + id + "_" + secret + "b"},
		{"underscore in secret", "bk_" + id + "_" + secret[:31] + "_"},
		{"trailing separator", "bk_" + id + "_" + secret + "_"},
		{"dash in id", "bk_" + id[:11] + "-" + "_" + secret},
		{"slash in secret", "bk_" + id + "_" + secret[:31] + "/"},
		{"space in secret", "bk_" + id + "_" + secret[:31] + " "},
		{"leading space", " bk_" + id + "_" + secret},
		{"non-ASCII", "bk_" + id + "_" + secret[:30] + "é"},
		{"bearer token", "eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			gotID, gotSecret, err := ParseAPIKey(tt.key)
			if berth.ErrorCode(err) != berth.EUNAUTHENTICATED || berth.ErrorMessage(err) != "malformed API key" {
				t.Fatalf("got %v, want UNAUTHENTICATED \"malformed API key\"", err)
			}
			if gotID != "" || gotSecret != "" {
				t.Fatalf("returned id %q and secret %q with the error", gotID, gotSecret)
			}
		})
	}
}

func TestAPIKeySecret_HashAndCheck(t *testing.T) {
	t.Parallel()
	_, secret, _, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	_, other, _, err := NewAPIKey()
	if err != nil {
		t.Fatal(err)
	}
	hash := HashAPIKeySecret(secret)
	if len(hash) != 64 || strings.ToLower(hash) != hash {
		t.Fatalf("hash %q, want 64 lower-case hex digits", hash)
	}
	if HashAPIKeySecret(secret) != hash {
		t.Fatal("hash is not deterministic")
	}
	// The SHA-256 of "abc", from FIPS 180-2.
	if got := HashAPIKeySecret("abc"); got != "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad" {
		t.Fatalf("HashAPIKeySecret(abc) = %s", got)
	}

	tests := []struct {
		name   string
		hash   string
		secret string
		want   bool
	}{
		{"right", hash, secret, true},
		{"upper-case hash", strings.ToUpper(hash), secret, true},
		{"wrong secret", hash, other, false},
		{"empty secret", hash, "", false},
		{"secret is the hash", hash, hash, false},
		{"empty hash", "", secret, false},
		{"truncated hash", hash[:62], secret, false},
		{"hash too long", hash + "00", secret, false},
		{"hash not hex", strings.Repeat("z", 64), secret, false},
		{"hash of the empty string matches nothing else", HashAPIKeySecret(""), secret, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			if got := CheckAPIKeySecret(tt.hash, tt.secret); got != tt.want {
				t.Fatalf("CheckAPIKeySecret = %v, want %v", got, tt.want)
			}
		})
	}
}
