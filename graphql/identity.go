package graphql

import (
	"context"
	"crypto/rand"
	"runtime"
	"sync"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// identity is sign-up and sign-in with berth's own issuer: accounts in the
// store, argon2id password hashes, tokens minted by auth.Issuer. Verifying
// tokens is the HTTP middleware's job.
type identity struct {
	store  berth.Store
	issuer *auth.Issuer // nil: sign-up and sign-in are disabled
	ttl    time.Duration
	params auth.PasswordParams
	// dummyHash is checked when a username does not exist, so that a
	// sign-in takes as long whether or not it does.
	dummyHash func() (string, error)
	// hashing bounds concurrent argon2id computations: each holds
	// params.Memory of memory.
	hashing chan struct{}
}

func newIdentity(s berth.Store, issuer *auth.Issuer, ttl time.Duration, params auth.PasswordParams) *identity {
	return &identity{
		store: s, issuer: issuer, ttl: ttl, params: params,
		dummyHash: sync.OnceValues(func() (string, error) { return auth.HashPassword(rand.Text(), params) }),
		hashing:   make(chan struct{}, max(2, runtime.GOMAXPROCS(0))),
	}
}

// errWrongCredentials is the one answer to a wrong username or password.
func errWrongCredentials() error {
	return berth.Errorf(berth.EUNAUTHENTICATED, "wrong username or password")
}

func (i *identity) enabled() error {
	if i.issuer == nil {
		return berth.Errorf(berth.EFORBIDDEN, "this server does not issue its own tokens; sign in with your identity provider")
	}
	return nil
}

// slow runs an argon2id computation once a slot is free.
func (i *identity) slow(ctx context.Context, fn func() error) error {
	select {
	case i.hashing <- struct{}{}:
	case <-ctx.Done():
		return berth.Errorf(berth.EUNAVAILABLE, "the server is busy; try again")
	}
	defer func() { <-i.hashing }()
	return fn()
}

// signUp creates a customer account (UNVERIFIED) and signs it in. Returns
// INVALID for a bad username, email or password, CONFLICT if the username
// or email is taken.
func (i *identity) signUp(ctx context.Context, username string, email *string, password string) (*generated.AuthPayload, error) {
	if err := i.enabled(); err != nil {
		return nil, err
	}
	name, err := berth.NormalizeUsername(username)
	if err != nil {
		return nil, err
	}
	var mail string
	if deref(email) != "" {
		if mail, err = berth.NormalizeEmail(*email); err != nil {
			return nil, err
		}
	}
	if err := auth.ValidatePassword(password); err != nil {
		return nil, err
	}
	var hash string
	if err := i.slow(ctx, func() (err error) { hash, err = auth.HashPassword(password, i.params); return err }); err != nil {
		return nil, err
	}
	a := &berth.Account{ID: berth.NewID(), Username: name, Email: mail, PasswordHash: hash,
		Groups: []string{berth.GroupCustomer}, Status: berth.AccountUnverified}
	if err := i.store.Update(ctx, func(tx berth.Tx) error { return tx.CreateAccount(a) }); err != nil {
		return nil, err
	}
	return i.mint(a)
}

// signIn checks a username and password and mints a token. A wrong
// username or password is UNAUTHENTICATED (the same answer, after the same
// work, for both); a deactivated account is FORBIDDEN.
func (i *identity) signIn(ctx context.Context, username, password string) (*generated.AuthPayload, error) {
	if err := i.enabled(); err != nil {
		return nil, err
	}
	var a *berth.Account
	name, err := berth.NormalizeUsername(username)
	if err == nil {
		err = i.store.View(ctx, func(tx berth.Tx) (err error) { a, err = tx.GetAccountByUsername(name); return err })
		if err != nil && berth.ErrorCode(err) != berth.ENOTFOUND {
			return nil, err
		}
	}
	var ok bool
	err = i.slow(ctx, func() error {
		if a == nil {
			hash, err := i.dummyHash()
			if err != nil {
				return err
			}
			_, err = auth.CheckPassword(hash, password)
			return err
		}
		var err error
		ok, err = auth.CheckPassword(a.PasswordHash, password)
		return err
	})
	switch {
	case err != nil:
		return nil, err
	case !ok:
		return nil, errWrongCredentials()
	case a.Status == berth.AccountDeactivated:
		return nil, berth.Errorf(berth.EFORBIDDEN, "this account is deactivated")
	}
	return i.mint(a)
}

func (i *identity) mint(a *berth.Account) (*generated.AuthPayload, error) {
	token, err := i.issuer.Mint(a.ID, a.Username, a.Groups, i.ttl)
	if err != nil {
		return nil, err
	}
	groups := a.Groups
	if groups == nil {
		groups = []string{}
	}
	return &generated.AuthPayload{AccessToken: token, TokenType: "Bearer", ExpiresIn: int(i.ttl / time.Second),
		Sub: a.ID, Username: a.Username, Groups: groups}, nil
}

func (r mutationResolver) SignUp(ctx context.Context, username string, email *string, password string) (*generated.AuthPayload, error) {
	return r.id.signUp(ctx, username, email, password)
}

func (r mutationResolver) SignIn(ctx context.Context, username string, password string) (*generated.AuthPayload, error) {
	return r.id.signIn(ctx, username, password)
}

// Me returns the caller, or null for an anonymous one.
func (r queryResolver) Me(ctx context.Context) (*berth.Actor, error) {
	return berth.ActorFromContext(ctx), nil
}

func (meResolver) Username(_ context.Context, a *berth.Actor) (*string, error) {
	return optString(a.Username), nil
}

func (meResolver) Groups(_ context.Context, a *berth.Actor) ([]string, error) {
	if a.Groups == nil {
		return []string{}, nil
	}
	return a.Groups, nil
}
