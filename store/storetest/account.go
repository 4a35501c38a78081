package storetest

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

func testTransactions(t *testing.T, b *bundle) {
	t.Run("ErrorRollsBack", func(t *testing.T) {
		errBoom := errors.New("boom")
		err := b.updateErr(func(tx berth.Tx) error {
			if err := tx.PutKV("tx", "k", []byte("v")); err != nil {
				return err
			}
			return errBoom
		})
		if !errors.Is(err, errBoom) {
			t.Fatalf("Update returned %v, want fn's error", err)
		}
		wantCode(t, viewErr(b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV("tx", "k") }), berth.ENOTFOUND, "")
	})
	t.Run("PanicRollsBack", func(t *testing.T) {
		func() {
			defer func() {
				if p := recover(); p != "boom" {
					t.Fatalf("recovered %v, want the panic to pass through", p)
				}
			}()
			_ = b.updateErr(func(tx berth.Tx) error {
				if err := tx.PutKV("tx", "p", []byte("v")); err != nil {
					return err
				}
				panic("boom")
			})
		}()
		wantCode(t, viewErr(b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV("tx", "p") }), berth.ENOTFOUND, "")
		// The connection went back to the pool: the store still writes.
		b.update(t, func(tx berth.Tx) error { return tx.PutKV("tx", "after", []byte("v")) })
	})
	t.Run("NowIsTheClock", func(t *testing.T) {
		at := b.clock.Advance(time.Minute)
		got := view(t, b, func(tx berth.Tx) (time.Time, error) { return tx.Now(), nil })
		if !got.Equal(at) || got.Location() != time.UTC {
			t.Fatalf("tx.Now() = %v, want the clock's %v in UTC", got, at)
		}
	})
	t.Run("ContextCancelled", func(t *testing.T) {
		ctx, cancel := context.WithCancel(b.ctx)
		cancel()
		err := b.store.Update(ctx, func(tx berth.Tx) error { return tx.PutKV("tx", "cancelled", []byte("v")) })
		if err == nil {
			t.Fatalf("Update with a cancelled context succeeded")
		}
		wantCode(t, viewErr(b, func(tx berth.Tx) ([]byte, error) { return tx.GetKV("tx", "cancelled") }), berth.ENOTFOUND, "")
	})
}

func testNotify(t *testing.T, b *bundle) {
	w := b.store.Wakeups()
	if w == nil {
		t.Skip("the store has no wakeups")
	}
	// Drain a wakeup left by an earlier Notify, if any.
	select {
	case <-w:
	default:
	}
	b.store.Notify(b.ctx)
	// The local wakeup is delivered before Notify returns; the timeout
	// only keeps a broken store from hanging the suite.
	select {
	case <-w:
	case <-time.After(10 * time.Second):
		t.Fatal("Notify did not wake the store's Wakeups channel")
	}
}

func testAccounts(t *testing.T, b *bundle) {
	alice := &berth.Account{Username: "alice", Email: "alice@example.com", PasswordHash: "hash",
		Groups: []string{berth.GroupCustomer, berth.GroupAdmin}, Status: berth.AccountVerified}
	b.update(t, func(tx berth.Tx) error { return tx.CreateAccount(alice) })
	if !berth.IsID(alice.ID) {
		t.Errorf("CreateAccount assigned id %q", alice.ID)
	}
	if !alice.CreatedAt.Equal(Start) {
		t.Errorf("CreatedAt = %v, want the clock's %v", alice.CreatedAt, Start)
	}
	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Account, error) { return tx.GetAccount(alice.ID) }), alice)
	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Account, error) { return tx.GetAccountByUsername("alice") }), alice)

	// Email is unique only when set: several accounts may have none.
	for _, name := range []string{"bob", "carol"} {
		a := &berth.Account{Username: name, Status: berth.AccountUnverified}
		b.update(t, func(tx berth.Tx) error { return tx.CreateAccount(a) })
		assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.Account, error) { return tx.GetAccount(a.ID) }), a)
	}

	for _, tt := range []struct {
		name    string
		account berth.Account
		code    string
		msg     string
	}{
		{"DuplicateUsername", berth.Account{Username: "alice", Email: "other@example.com"}, berth.ECONFLICT, "username already exists"},
		{"DuplicateEmail", berth.Account{Username: "alice2", Email: "alice@example.com"}, berth.ECONFLICT, "email already exists"},
		{"DuplicateID", berth.Account{ID: alice.ID, Username: "dave"}, berth.ECONFLICT, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			a := tt.account
			a.Status = berth.AccountUnverified
			wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateAccount(&a) }), tt.code, tt.msg)
		})
	}
	t.Run("NotFound", func(t *testing.T) {
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Account, error) { return tx.GetAccount(berth.NewID()) }), berth.ENOTFOUND, "")
		wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.Account, error) { return tx.GetAccountByUsername("nobody") }), berth.ENOTFOUND, "")
	})
}

func testAPIKeys(t *testing.T, b *bundle) {
	// An expiry given in another zone comes back as the same instant in UTC.
	paris := time.FixedZone("CET", 3600)
	k1 := &berth.APIKey{ID: berth.NewID(), Name: "ci", SecretHash: "h1", ExpiresAt: Start.Add(24 * time.Hour).In(paris)}
	b.update(t, func(tx berth.Tx) error { return tx.CreateAPIKey(k1) })
	if !k1.CreatedAt.Equal(Start) {
		t.Errorf("CreatedAt = %v, want the clock's %v", k1.CreatedAt, Start)
	}
	b.clock.Advance(time.Second)
	k2 := &berth.APIKey{ID: berth.NewID(), Name: "reporting", SecretHash: "h2"}
	b.update(t, func(tx berth.Tx) error { return tx.CreateAPIKey(k2) })

	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(k1.ID) }), k1)
	assertEqual(t, view(t, b, func(tx berth.Tx) ([]*berth.APIKey, error) { return tx.ListAPIKeys() }), []*berth.APIKey{k1, k2})

	revokedAt := b.clock.Advance(time.Minute)
	b.update(t, func(tx berth.Tx) error { return tx.RevokeAPIKey(k1.ID, revokedAt) })
	got := view(t, b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(k1.ID) })
	k1.RevokedAt = revokedAt
	assertEqual(t, got, k1)
	if got.Active(b.clock.Now()) {
		t.Errorf("a revoked key is active")
	}
	if !view(t, b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(k2.ID) }).Active(b.clock.Now()) {
		t.Errorf("revoking one key revoked another")
	}

	// Revoking again keeps the first revocation.
	b.update(t, func(tx berth.Tx) error { return tx.RevokeAPIKey(k1.ID, b.clock.Advance(time.Hour)) })
	assertEqual(t, view(t, b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(k1.ID) }), k1)

	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.RevokeAPIKey(berth.NewID(), revokedAt) }), berth.ENOTFOUND, "")
	wantCode(t, viewErr(b, func(tx berth.Tx) (*berth.APIKey, error) { return tx.GetAPIKey(berth.NewID()) }), berth.ENOTFOUND, "")
	dup := &berth.APIKey{ID: k2.ID, Name: "dup", SecretHash: "h3"}
	wantCode(t, b.updateErr(func(tx berth.Tx) error { return tx.CreateAPIKey(dup) }), berth.ECONFLICT, "")
}
