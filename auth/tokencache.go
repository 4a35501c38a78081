package auth

import (
	"container/list"
	"crypto/sha256"
	"slices"
	"sync"
	"time"

	"github.com/berthhq/berth"
)

// Bounds of the verified-token cache.
const (
	// TokenCacheSize is how many verified tokens a Verifier remembers.
	TokenCacheSize = 10_000

	// TokenCacheTTL is the longest a verified token is trusted without
	// checking its signature again, however long it has left to live: a key
	// removed from an external issuer's key set stops working within it.
	TokenCacheTTL = time.Minute

	tokenCacheShards = 16
)

// tokenCache remembers the tokens a Verifier accepted, so that a client
// sending the same token on every request (each poll of a booking) pays for
// one signature check a minute instead of one per request.
//
// Entries are keyed by the SHA-256 of the whole compact token, signature
// included, so only the exact bytes that were verified can hit. Refusals are
// never stored. An entry is used only while the token's own time limits still
// hold at the verifier's clock ("exp" and "nbf", with the same leeway as a
// full check) and for at most TokenCacheTTL after it was verified. Each of
// the shards is an LRU list holding at most its share of the capacity. A nil
// *tokenCache caches nothing.
type tokenCache struct {
	ttl    time.Duration
	shards [tokenCacheShards]tokenShard
}

type tokenShard struct {
	mu    sync.Mutex
	max   int
	items map[[sha256.Size]byte]*list.Element
	lru   list.List // of *tokenEntry, most recently used first
}

// tokenEntry is one verified token.
type tokenEntry struct {
	key       [sha256.Size]byte
	actor     berth.Actor
	expiry    time.Time // the token's "exp"
	notBefore time.Time // the token's "nbf" (zero if it has none)
	verified  time.Time // when the signature was checked
}

// newTokenCache returns a cache of at most size tokens (at least one per
// shard), each trusted for at most ttl.
func newTokenCache(size int, ttl time.Duration) *tokenCache {
	c := &tokenCache{ttl: ttl}
	per := max(1, size/tokenCacheShards)
	for i := range c.shards {
		c.shards[i].max = per
		c.shards[i].items = make(map[[sha256.Size]byte]*list.Element)
	}
	return c
}

func (c *tokenCache) shard(key *[sha256.Size]byte) *tokenShard {
	return &c.shards[int(key[0])%tokenCacheShards]
}

// get returns a copy of the actor of the token with key if it was verified
// and is still valid at now, given leeway on its time limits.
func (c *tokenCache) get(key *[sha256.Size]byte, now time.Time, leeway time.Duration) (*berth.Actor, bool) {
	if c == nil {
		return nil, false
	}
	s := c.shard(key)
	s.mu.Lock()
	el, ok := s.items[*key]
	if !ok {
		s.mu.Unlock()
		return nil, false
	}
	e := el.Value.(*tokenEntry)
	if now.After(e.expiry.Add(leeway)) || now.Sub(e.verified) >= c.ttl ||
		(!e.notBefore.IsZero() && e.notBefore.After(now.Add(leeway))) {
		s.lru.Remove(el)
		delete(s.items, *key)
		s.mu.Unlock()
		return nil, false
	}
	s.lru.MoveToFront(el)
	a := e.actor
	s.mu.Unlock()
	// Every caller gets its own Actor and Groups: one request changing what
	// it was given must not change what the next one is given.
	a.Groups = slices.Clone(a.Groups)
	return &a, true
}

// put remembers a verified token, evicting the least recently used one of
// its shard when the shard is full.
func (c *tokenCache) put(key *[sha256.Size]byte, a *berth.Actor, expiry, nbf, verified time.Time) {
	if c == nil {
		return
	}
	e := &tokenEntry{key: *key, actor: *a, expiry: expiry, notBefore: nbf, verified: verified}
	e.actor.Groups = slices.Clone(a.Groups)
	s := c.shard(key)
	s.mu.Lock()
	defer s.mu.Unlock()
	if el, ok := s.items[*key]; ok {
		el.Value = e
		s.lru.MoveToFront(el)
		return
	}
	for s.lru.Len() >= s.max {
		oldest := s.lru.Back()
		s.lru.Remove(oldest)
		delete(s.items, oldest.Value.(*tokenEntry).key)
	}
	s.items[*key] = s.lru.PushFront(e)
}

// len returns the number of cached tokens.
func (c *tokenCache) len() int {
	n := 0
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		n += s.lru.Len()
		s.mu.Unlock()
	}
	return n
}
