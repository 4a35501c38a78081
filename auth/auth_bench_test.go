package auth

import (
	"context"
	"testing"
	"time"
)

// BenchmarkVerifyOwnToken is what authenticating one request costs: an
// Ed25519 signature check and the claims of a token berth issued. Every
// GraphQL request of a load test (createCharge, processBooking, each
// getBooking poll) pays it once.
func BenchmarkVerifyOwnToken(b *testing.B) {
	ctx := context.Background()
	issuer, err := LoadOrCreateIssuer(b.TempDir(), "berth", "berth")
	if err != nil {
		b.Fatal(err)
	}
	v, err := NewVerifier(ctx, issuer, nil)
	if err != nil {
		b.Fatal(err)
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
