package payment_test

import (
	"context"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/payment"
)

// hangingProvider never answers an authorization until its context ends.
type hangingProvider struct{ payment.Provider }

func (hangingProvider) Authorize(ctx context.Context, _ payment.AuthorizeRequest) (string, error) {
	<-ctx.Done()
	return "", ctx.Err()
}

// TestCreateTimesOut: a provider that does not answer costs createCharge
// AuthorizeTimeout, then UNAVAILABLE; nothing is recorded.
func TestCreateTimesOut(t *testing.T) {
	t.Parallel()
	sim, db := newSim(t)
	c := payment.NewCharges(db, hangingProvider{sim})
	c.AuthorizeTimeout = 50 * time.Millisecond
	alice := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: "alice"})
	start := time.Now()
	ch, err := c.Create(alice, 100, "EUR", "tok_visa", "")
	if berth.ErrorCode(err) != berth.EUNAVAILABLE || ch != nil {
		t.Fatalf("Create: %+v %v, want UNAVAILABLE", ch, err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("Create took %s", d)
	}
	if payment.DefaultAuthorizeTimeout != 10*time.Second {
		t.Fatalf("the default timeout is %s", payment.DefaultAuthorizeTimeout)
	}
}
