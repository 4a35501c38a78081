package auth

import (
	"crypto/sha256"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	jose "github.com/go-jose/go-jose/v4"
)

// testClock is a clock tests move by hand.
type testClock struct{ ns atomic.Int64 }

func newTestClock(t time.Time) *testClock {
	c := &testClock{}
	c.ns.Store(t.UnixNano())
	return c
}

func (c *testClock) Now() time.Time          { return time.Unix(0, c.ns.Load()) }
func (c *testClock) Set(t time.Time)         { c.ns.Store(t.UnixNano()) }
func (c *testClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

// cacheSetup returns a Verifier trusting a new own issuer, both reading
// clock, which starts at a whole second.
func cacheSetup(t *testing.T) (*Verifier, *Issuer, *testClock) {
	t.Helper()
	clock := newTestClock(time.Unix(2_000_000_000, 0))
	own := newTestIssuer(t, "berth", "berth")
	own.now = clock.Now
	v, err := NewVerifier(t.Context(), own, nil)
	if err != nil {
		t.Fatal(err)
	}
	v.now = clock.Now
	return v, own, clock
}

// forgetIssuers makes every full check fail with "unknown token issuer", so
// that an accepted token can only have come from the cache.
func forgetIssuers(v *Verifier) { v.issuers = map[string]*trustedIssuer{} }

func wantRefused(t *testing.T, v *Verifier, tok, msg string) {
	t.Helper()
	a, err := v.Verify(t.Context(), tok)
	if err == nil {
		t.Fatalf("token accepted as %+v, want %q", *a, msg)
	}
	if berth.ErrorCode(err) != berth.EUNAUTHENTICATED || berth.ErrorMessage(err) != msg {
		t.Fatalf("got %v, want UNAUTHENTICATED %q", err, msg)
	}
}

func wantAccepted(t *testing.T, v *Verifier, tok string) *berth.Actor {
	t.Helper()
	a, err := v.Verify(t.Context(), tok)
	if err != nil {
		t.Fatalf("token refused: %v", err)
	}
	return a
}

// A cached token is served only while its "exp" (with the leeway) and "nbf"
// hold at the verifier's clock: the cache never widens a token's lifetime.
func TestTokenCache_TimeLimits(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name    string
		move    time.Duration // from the time the token was cached
		wantMsg string        // "" = accepted
	}{
		{"fresh", 10 * time.Second, ""},
		{"expired within the leeway", 20*time.Second + Leeway - time.Second, ""},
		{"expired beyond the leeway", 20*time.Second + Leeway + time.Second, "token expired"},
		{"clock moved back before nbf", -Leeway - time.Second, "token not yet valid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, own, clock := cacheSetup(t)
			tok := mustMint(t, own, "user-1", "ada", []string{"customer"}, 20*time.Second)
			wantAccepted(t, v, tok)
			if n := v.cache.len(); n != 1 {
				t.Fatalf("%d cached tokens, want 1", n)
			}
			clock.Advance(tt.move)
			if tt.wantMsg == "" {
				wantAccepted(t, v, tok)
			} else {
				wantRefused(t, v, tok, tt.wantMsg)
			}
		})
	}
}

// Within TokenCacheTTL the signature is not checked again; after it, it is.
func TestTokenCache_TTL(t *testing.T) {
	t.Parallel()
	v, own, clock := cacheSetup(t)
	tok := mustMint(t, own, "user-1", "ada", []string{"customer"}, time.Hour)
	wantAccepted(t, v, tok)
	forgetIssuers(v)
	clock.Advance(TokenCacheTTL - time.Second)
	wantAccepted(t, v, tok) // from the cache
	clock.Advance(time.Second)
	wantRefused(t, v, tok, "unknown token issuer") // checked again
	if n := v.cache.len(); n != 0 {
		t.Fatalf("%d cached tokens, want 0", n)
	}
}

// Refusals are never cached, and a cached token helps no other string: the
// key is the whole token, signature included.
func TestTokenCache_OnlyExactVerifiedTokens(t *testing.T) {
	t.Parallel()
	v, own, clock := cacheSetup(t)
	wantRefused(t, v, mustMint(t, own.withAudience(t, "other"), "user-1", "", nil, time.Hour), "invalid token audience")
	wantRefused(t, v, "a.b.c", "malformed token")
	if n := v.cache.len(); n != 0 {
		t.Fatalf("%d cached tokens after refusals, want 0", n)
	}

	tok := mustMint(t, own, "user-1", "", []string{"customer"}, time.Hour)
	wantAccepted(t, v, tok)
	// The same claims signed by another key (a rotated own key, or a forger
	// who copied the header and payload): a different string, checked in full.
	other := newTestIssuer(t, "berth", "berth")
	other.now = clock.Now
	wantRefused(t, v, mustMint(t, other, "user-1", "", []string{"customer"}, time.Hour), "invalid token signature")
	forged := tok[:len(tok)-4] + "AAAA"
	if forged == tok {
		forged = tok[:len(tok)-4] + "BBBB"
	}
	wantRefused(t, v, forged, "invalid token signature")

	// After a rotation (a new key file, so a new Verifier), tokens of the old
	// key are refused: the cache belongs to one Verifier.
	rotated, err := NewVerifier(t.Context(), other, nil)
	if err != nil {
		t.Fatal(err)
	}
	rotated.now = clock.Now
	wantRefused(t, rotated, tok, "invalid token signature")
}

// withAudience returns a copy of i minting tokens for aud.
func (i *Issuer) withAudience(t *testing.T, aud string) *Issuer {
	t.Helper()
	c, err := newIssuer(i.key, i.issuer, aud)
	if err != nil {
		t.Fatal(err)
	}
	c.now = i.now
	return c
}

// An external issuer that drops a key: tokens it signed are accepted from
// the cache for at most TokenCacheTTL after they were verified, then refused.
func TestTokenCache_ExternalKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	clock := newTestClock(time.Now())
	b.v.now = clock.Now
	b.v.issuers[b.idp.URL()].keys.now = clock.Now
	base := claimsFor(b.idp.URL(), "client-123", clock.Now())
	old := b.idp.token(t, base)
	wantAccepted(t, b.v, old)

	newKey := newECKey(t)
	b.idp.publish(jose.JSONWebKey{Key: newKey.Public(), KeyID: "idp-key-2", Algorithm: "ES256", Use: "sig"})
	clock.Advance(minKeyRefresh + time.Second)
	wantAccepted(t, b.v, signJWT(t, jose.ES256, newKey, "idp-key-2", base)) // fetches the new key set
	wantAccepted(t, b.v, old)                                               // cached, within the bound

	clock.Advance(TokenCacheTTL - minKeyRefresh)
	wantRefused(t, b.v, old, "invalid token signature")
}

// The cache never holds more than its capacity, evicting the least
// recently used token of a shard first.
func TestTokenCache_Bound(t *testing.T) {
	t.Parallel()
	t.Run("through Verify", func(t *testing.T) {
		t.Parallel()
		v, own, _ := cacheSetup(t)
		v.cache = newTokenCache(64, TokenCacheTTL)
		var last string
		for i := range 500 {
			last = mustMint(t, own, fmt.Sprint("user-", i), "", nil, time.Hour)
			wantAccepted(t, v, last)
			if n := v.cache.len(); n > 64 {
				t.Fatalf("%d cached tokens after %d, want at most 64", n, i+1)
			}
		}
		forgetIssuers(v)
		wantAccepted(t, v, last) // the newest is still cached
	})
	t.Run("LRU order in a shard", func(t *testing.T) {
		t.Parallel()
		c := newTokenCache(2*tokenCacheShards, time.Minute) // two per shard
		now := time.Unix(2_000_000_000, 0)
		key := func(i byte) *[sha256.Size]byte { return &[sha256.Size]byte{0: 0, 1: i} } // all in shard 0
		for i := range byte(2) {
			c.put(key(i), &berth.Actor{Subject: fmt.Sprint(i)}, now.Add(time.Hour), time.Time{}, now)
		}
		if _, ok := c.get(key(0), now, Leeway); !ok { // 0 is now the most recent
			t.Fatal("key 0 not cached")
		}
		c.put(key(2), &berth.Actor{Subject: "2"}, now.Add(time.Hour), time.Time{}, now) // evicts 1
		for i, want := range []bool{true, false, true} {
			if _, ok := c.get(key(byte(i)), now, Leeway); ok != want {
				t.Errorf("key %d cached: %v, want %v", i, ok, want)
			}
		}
		if n := c.len(); n != 2 {
			t.Errorf("%d cached, want 2", n)
		}
	})
}

// Each caller gets its own actor: changing one does not change what the
// next request is given.
func TestTokenCache_ActorsAreCopies(t *testing.T) {
	t.Parallel()
	v, own, _ := cacheSetup(t)
	tok := mustMint(t, own, "user-1", "ada", []string{"customer"}, time.Hour)
	first := wantAccepted(t, v, tok)
	first.Groups[0] = berth.GroupAdmin
	first.Subject = "someone-else"
	second := wantAccepted(t, v, tok)
	second.Groups = append(second.Groups, berth.GroupAdmin)
	third := wantAccepted(t, v, tok)
	assertActor(t, third, berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "ada", Groups: []string{"customer"}})
}

// Many goroutines verifying, hitting, evicting and re-verifying at once
// (run with -race).
func TestTokenCache_Concurrent(t *testing.T) {
	t.Parallel()
	v, own, clock := cacheSetup(t)
	v.cache = newTokenCache(tokenCacheShards, TokenCacheTTL) // one per shard: constant eviction
	toks := make([]string, 40)
	for i := range toks {
		toks[i] = mustMint(t, own, fmt.Sprint("user-", i), "", []string{"customer", fmt.Sprint("g", i)}, time.Hour)
	}
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for g := range 16 {
		wg.Go(func() {
			for n := range 200 {
				i := (g*7 + n) % len(toks)
				if g == 0 && n%50 == 0 {
					clock.Advance(TokenCacheTTL / 3) // entries age out as others read them
				}
				a, err := v.Verify(t.Context(), toks[i])
				if err != nil {
					errs <- err
					return
				}
				if a.Subject != fmt.Sprint("user-", i) || !slices.Equal(a.Groups, []string{"customer", fmt.Sprint("g", i)}) {
					errs <- fmt.Errorf("token %d gave %+v", i, *a)
					return
				}
				a.Groups[0] = "mutated" // must not reach the cache or another caller
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	if n := v.cache.len(); n > tokenCacheShards {
		t.Errorf("%d cached, want at most %d", n, tokenCacheShards)
	}
}
