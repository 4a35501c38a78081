package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyOwnToken is what authenticating one request costs when the
// client sends the same token again, as every GraphQL request of a load test
// does (createCharge, processBooking, each getBooking poll): a lookup in the
// verified-token cache.
func BenchmarkVerifyOwnToken(b *testing.B) { benchmarkVerifyOwnToken(b, true) }

// BenchmarkVerifyOwnTokenUncached is the full check of a token berth issued:
// an Ed25519 signature and the claims, paid once per token and minute.
func BenchmarkVerifyOwnTokenUncached(b *testing.B) { benchmarkVerifyOwnToken(b, false) }

func benchmarkVerifyOwnToken(b *testing.B, cached bool) {
	ctx := context.Background()
	issuer, err := LoadOrCreateIssuer(b.TempDir(), "berth", "berth")
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(ctx, issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	if !cached {
		v.cache = nil
	}
	tok, err := issuer.Mint("bench-customer", "bench", []string{"customer"}, time.Hour)
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for range b.N {
		if _, err := v.Verify(ctx, tok); err != nil {
			b.Fatal(err)
		}
	}
}

// BenchmarkMint is the cost of signing one token (signIn, berth token).
func BenchmarkMint(b *testing.B) {
	issuer, err := LoadOrCreateIssuer(b.TempDir(), "berth", "berth")
	if err != nil {
		b.Fatal(err)
	}
	b.ReportAllocs()
	for range b.N {
		if _, err := issuer.Mint("bench-customer", "bench", []string{"customer"}, time.Hour); err != nil {
			b.Fatal(err)
		}
	}
}
