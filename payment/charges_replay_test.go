package payment_test

import (
	"context"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

// TestCreateReplay: an idempotency key replays its charge only for the
// same request, and replays a refusal as a refusal. (FuzzCreateCharge
// found a declined charge replayed as a success, for any amount.)
func TestCreateReplay(t *testing.T) {
	t.Parallel()
	sim, db := newSim(t)
	c := payment.NewCharges(db, sim)
	alice := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: "alice"})
	bob := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: "bob"})

	first, err := c.Create(alice, 100, "EUR", "tok_visa", "k")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range []struct {
		ctx      context.Context
		amount   int64
		currency string
		code     string
	}{
		{alice, 100, "eur", ""}, {alice, 100, "EUR", ""}, {alice, 1, "EUR", berth.ECONFLICT}, {alice, 100, "USD", berth.ECONFLICT},
	} {
		ch, err := c.Create(r.ctx, r.amount, r.currency, "tok_visa", "k")
		if berth.ErrorCode(err) != r.code || (r.code == "" && ch.ID != first.ID) || (r.code != "" && ch != nil) {
			t.Fatalf("replay %d %s: %+v %v, want code %q", r.amount, r.currency, ch, err, r.code)
		}
	}
	// The same key of another customer is another charge.
	if ch, err := c.Create(bob, 100, "EUR", "tok_visa", "k"); err != nil || ch.ID == first.ID {
		t.Fatalf("bob's key k: %+v %v", ch, err)
	}
	for token, code := range map[string]string{"tok_chargeDeclined": berth.EPAYMENTDECLINED, "tok_unknown": berth.EINVALID} {
		for i := range 2 {
			if ch, err := c.Create(alice, 100, "EUR", token, "refused-"+token); berth.ErrorCode(err) != code || ch != nil {
				t.Fatalf("%s, attempt %d: %+v %v, want %s", token, i+1, ch, err, code)
			}
		}
	}
}
