package payment_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/store"
)

func newSim(t *testing.T) (*payment.Simulated, berth.Store) {
	t.Helper()
	db, err := store.Open(context.Background(), store.Config{URL: "sqlite:" + filepath.Join(t.TempDir(), "p.db")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return payment.NewSimulated(db), db
}

func TestSimulatedTokens(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, db := newSim(t)
	tests := []struct {
		token                      string
		authorize, capture, refund string // expected error codes
	}{
		{payment.TokenVisa, "", "", ""},
		{payment.TokenChargeDeclined, berth.EPAYMENTDECLINED, "", ""},
		{payment.TokenCaptureFail, "", berth.EPAYMENTDECLINED, ""},
		{payment.TokenRefundFail, "", "", berth.EUNAVAILABLE},
		{"tok_unknown", berth.EINVALID, "", ""},
	}
	for _, tt := range tests {
		ref, err := p.Authorize(ctx, payment.AuthorizeRequest{Key: "a:" + tt.token, Token: tt.token, Amount: 1000, Currency: "EUR"})
		if berth.ErrorCode(err) != tt.authorize {
			t.Fatalf("%s authorize: %v", tt.token, err)
		}
		if err != nil {
			continue
		}
		err = p.Capture(ctx, "c:"+tt.token, ref, 1000)
		if berth.ErrorCode(err) != tt.capture {
			t.Fatalf("%s capture: %v", tt.token, err)
		}
		if err != nil {
			if err := p.Void(ctx, "v:"+tt.token, ref); err != nil {
				t.Fatalf("%s void: %v", tt.token, err)
			}
			continue
		}
		err = p.Refund(ctx, "r:"+tt.token, ref, 1000)
		if berth.ErrorCode(err) != tt.refund {
			t.Fatalf("%s refund: %v", tt.token, err)
		}
		if err != nil {
			// The fault clears; the same key then succeeds exactly once.
			if n, err := payment.Heal(ctx, db, ref); err != nil || n != 1 {
				t.Fatalf("heal: %d %v", n, err)
			}
			for range 2 {
				if err := p.Refund(ctx, "r:"+tt.token, ref, 1000); err != nil {
					t.Fatalf("refund after heal: %v", err)
				}
			}
			c, r, err := payment.Ledger(ctx, db, []string{ref})
			if err != nil || c != 1000 || r != 1000 {
				t.Fatalf("ledger %d %d %v", c, r, err)
			}
		}
	}
}

func TestSimulatedIdempotentAndGuarded(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	p, db := newSim(t)
	ref, err := p.Authorize(ctx, payment.AuthorizeRequest{Key: "k", Token: payment.TokenVisa, Amount: 500, Currency: "EUR"})
	if err != nil {
		t.Fatal(err)
	}
	again, err := p.Authorize(ctx, payment.AuthorizeRequest{Key: "k", Token: payment.TokenVisa, Amount: 500, Currency: "EUR"})
	if err != nil || again != ref {
		t.Fatalf("same key authorized twice: %s %s %v", ref, again, err)
	}
	if err := p.Capture(ctx, "cap", ref, 600); berth.ErrorCode(err) != berth.EPAYMENTDECLINED {
		t.Fatalf("capture above the authorization: %v", err)
	}
	for range 3 {
		if err := p.Capture(ctx, "cap2", ref, 500); err != nil {
			t.Fatal(err)
		}
	}
	if err := p.Void(ctx, "void", ref); berth.ErrorCode(err) != berth.ECONFLICT {
		t.Fatalf("void after capture: %v", err)
	}
	if err := p.Refund(ctx, "ref", ref, 501); berth.ErrorCode(err) != berth.EINVALID {
		t.Fatalf("refund above the capture: %v", err)
	}
	if err := p.Capture(ctx, "ref", ref, 500); berth.ErrorCode(err) != berth.ECONFLICT {
		t.Fatalf("a key reused for another operation: %v", err)
	}
	c, r, _ := payment.Ledger(ctx, db, []string{ref})
	if c != 500 || r != 0 {
		t.Fatalf("ledger captured %d refunded %d", c, r)
	}
}
