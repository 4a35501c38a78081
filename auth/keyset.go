package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/rsa"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"sync"
	"time"

	jose "github.com/go-jose/go-jose/v4"
)

const (
	// minKeyRefresh is the shortest time between two fetches of a remote key
	// set. Without it, every token naming an unknown "kid" (which anyone can
	// forge) would cost a request to the issuer.
	minKeyRefresh = 30 * time.Second

	keyFetchTimeout = 10 * time.Second
	maxKeySetSize   = 1 << 20
)

// remoteKeySet is the oidc.KeySet of an external issuer: the keys at a JWKS
// URL, fetched when a token is signed by a key not in the cache, but at most
// once every minKeyRefresh.
//
// It replaces oidc.RemoteKeySet, which in go-oidc v3.21.0 re-fetches the key
// set for every token whose "kid" it does not know, without any limit (see
// coreos/go-oidc pull request #482, not merged). go-oidc's IDTokenVerifier
// still checks the algorithm before calling VerifySignature.
type remoteKeySet struct {
	url    string
	algs   []jose.SignatureAlgorithm // the issuer's algorithms
	client *http.Client
	now    func() time.Time // time.Now; tests replace it

	fetching chan struct{} // holds a token while a fetch runs

	mu        sync.RWMutex
	keys      []jose.JSONWebKey
	lastFetch time.Time // start of the last fetch attempt, failed or not
}

func newRemoteKeySet(url string, algs []string) *remoteKeySet {
	r := &remoteKeySet{
		url:      url,
		client:   &http.Client{Timeout: keyFetchTimeout},
		now:      time.Now,
		fetching: make(chan struct{}, 1),
	}
	for _, a := range algs {
		r.algs = append(r.algs, jose.SignatureAlgorithm(a))
	}
	return r
}

// VerifySignature implements oidc.KeySet.
func (r *remoteKeySet) VerifySignature(ctx context.Context, raw string) ([]byte, error) {
	jws, err := jose.ParseSigned(raw, r.algs)
	if err != nil {
		return nil, fmt.Errorf("parse token: %w", err)
	} else if len(jws.Signatures) != 1 {
		return nil, errors.New("token must have exactly one signature")
	}
	r.mu.RLock()
	cached := r.keys
	r.mu.RUnlock()
	if payload, ok := verifyWithKeys(jws, cached); ok {
		return payload, nil
	}
	keys, err := r.refresh(ctx)
	if err != nil {
		return nil, err
	}
	if payload, ok := verifyWithKeys(jws, keys); ok {
		return payload, nil
	}
	return nil, errors.New("no key verifies the token signature")
}

// verifyWithKeys tries the keys matching the token's "kid" (all keys if it
// has none) and "alg".
func verifyWithKeys(jws *jose.JSONWebSignature, keys []jose.JSONWebKey) ([]byte, bool) {
	h := jws.Signatures[0].Header
	for _, k := range keys {
		if (h.KeyID != "" && k.KeyID != h.KeyID) || (k.Algorithm != "" && k.Algorithm != h.Algorithm) {
			continue
		}
		if payload, err := jws.Verify(k.Key); err == nil {
			return payload, true
		}
	}
	return nil, false
}

// refresh fetches the key set unless a fetch started less than minKeyRefresh
// ago or finished while this call waited for its turn; either way it returns
// the keys now cached. ctx bounds the wait, not the fetch, so that a
// cancelled request cannot fail a fetch other callers wait for.
func (r *remoteKeySet) refresh(ctx context.Context) ([]jose.JSONWebKey, error) {
	asked := r.now()
	select {
	case r.fetching <- struct{}{}:
		defer func() { <-r.fetching }()
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	r.mu.RLock()
	keys, last := r.keys, r.lastFetch
	r.mu.RUnlock()
	if !last.IsZero() && (!last.Before(asked) || r.now().Sub(last) < minKeyRefresh) {
		return keys, nil
	}

	r.mu.Lock()
	r.lastFetch = r.now()
	r.mu.Unlock()
	fetched, err := r.fetch(context.WithoutCancel(ctx))
	if err != nil {
		return nil, err
	}
	r.mu.Lock()
	r.keys = fetched
	r.mu.Unlock()
	return fetched, nil
}

// fetch downloads and parses the key set. Keys it cannot use (unknown key
// types or curves, encryption keys, symmetric or private keys) are skipped
// rather than failing the whole set; a set with no usable key is an error.
func (r *remoteKeySet) fetch(ctx context.Context) ([]jose.JSONWebKey, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, r.url, nil)
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	req.Header.Set("Accept", "application/json")
	req.Header.Set("Cache-Control", "no-cache")
	resp, err := r.client.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch keys: %w", err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return nil, fmt.Errorf("fetch keys from %s: %s", r.url, resp.Status)
	}
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxKeySetSize))
	if err != nil {
		return nil, fmt.Errorf("fetch keys from %s: %w", r.url, err)
	}
	var set struct {
		Keys []json.RawMessage `json:"keys"`
	}
	if err := json.Unmarshal(body, &set); err != nil {
		return nil, fmt.Errorf("decode keys from %s: %w", r.url, err)
	}
	var keys []jose.JSONWebKey
	for _, raw := range set.Keys {
		var k jose.JSONWebKey
		if err := k.UnmarshalJSON(raw); err != nil || !k.Valid() || (k.Use != "" && k.Use != "sig") {
			continue
		}
		switch k.Key.(type) {
		case *rsa.PublicKey, *ecdsa.PublicKey, ed25519.PublicKey:
			keys = append(keys, k)
		}
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("keys from %s: no usable signing key", r.url)
	}
	return keys, nil
}
