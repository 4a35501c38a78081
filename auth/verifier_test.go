package auth

import (
	"context"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	jose "github.com/go-jose/go-jose/v4"
)

// fakeIdP is an external OIDC issuer: a discovery document and a JWKS served
// by an httptest.Server, and an ES256 key to sign tokens with.
type fakeIdP struct {
	srv       *httptest.Server
	key       *ecdsa.PrivateKey
	kid       string
	jwksHits  atomic.Int32
	discovery atomic.Int32

	mu        sync.Mutex
	published []jose.JSONWebKey
	algs      []string // id_token_signing_alg_values_supported
}

func newFakeIdP(t *testing.T) *fakeIdP {
	t.Helper()
	idp := &fakeIdP{kid: "idp-key-1", algs: []string{"ES256"}}
	idp.key = newECKey(t)
	idp.published = []jose.JSONWebKey{{Key: idp.key.Public(), KeyID: idp.kid, Algorithm: "ES256", Use: "sig"}}
	mux := http.NewServeMux()
	mux.HandleFunc("GET /.well-known/openid-configuration", func(w http.ResponseWriter, r *http.Request) {
		idp.discovery.Add(1)
		idp.mu.Lock()
		algs := idp.algs
		idp.mu.Unlock()
		writeJSON(w, map[string]any{
			"issuer":                                idp.srv.URL,
			"authorization_endpoint":                idp.srv.URL + "/authorize",
			"token_endpoint":                        idp.srv.URL + "/token",
			"jwks_uri":                              idp.srv.URL + "/jwks",
			"id_token_signing_alg_values_supported": algs,
		})
	})
	mux.HandleFunc("GET /jwks", func(w http.ResponseWriter, r *http.Request) {
		idp.jwksHits.Add(1)
		idp.mu.Lock()
		set := jose.JSONWebKeySet{Keys: slices.Clone(idp.published)}
		idp.mu.Unlock()
		writeJSON(w, set)
	})
	idp.srv = httptest.NewServer(mux)
	t.Cleanup(idp.srv.Close)
	return idp
}

func (idp *fakeIdP) URL() string { return idp.srv.URL }

func (idp *fakeIdP) publish(keys ...jose.JSONWebKey) {
	idp.mu.Lock()
	defer idp.mu.Unlock()
	idp.published = keys
}

// token signs claims with the IdP's key.
func (idp *fakeIdP) token(t *testing.T, claims map[string]any) string {
	t.Helper()
	return signJWT(t, jose.ES256, idp.key, idp.kid, claims)
}

func writeJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(v)
}

func newECKey(t *testing.T) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// signJWT signs claims as a compact JWS with go-jose.
func signJWT(t *testing.T, alg jose.SignatureAlgorithm, key any, kid string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
		(&jose.SignerOptions{}).WithType("JWT"))
	if err != nil {
		t.Fatal(err)
	}
	payload, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	tok, err := jws.CompactSerialize()
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

// handJWT builds a compact JWS by hand, for tokens go-jose refuses to make.
func handJWT(t *testing.T, header, claims map[string]any, sign func(signingInput string) []byte) string {
	t.Helper()
	h, err := json.Marshal(header)
	if err != nil {
		t.Fatal(err)
	}
	c, err := json.Marshal(claims)
	if err != nil {
		t.Fatal(err)
	}
	input := base64.RawURLEncoding.EncodeToString(h) + "." + base64.RawURLEncoding.EncodeToString(c)
	return input + "." + base64.RawURLEncoding.EncodeToString(sign(input))
}

func hs256(key []byte) func(string) []byte {
	return func(input string) []byte {
		m := hmac.New(sha256.New, key)
		m.Write([]byte(input))
		return m.Sum(nil)
	}
}

// claimsFor returns valid claims for iss and aud at now.
func claimsFor(iss, aud string, now time.Time) map[string]any {
	return map[string]any{
		"iss": iss, "aud": aud, "sub": "user-1",
		"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(),
	}
}

func with(claims map[string]any, kv ...any) map[string]any {
	c := make(map[string]any, len(claims))
	for k, v := range claims {
		c[k] = v
	}
	for i := 0; i < len(kv); i += 2 {
		if kv[i+1] == nil {
			delete(c, kv[i].(string))
		} else {
			c[kv[i].(string)] = kv[i+1]
		}
	}
	return c
}

// bundle is what a Verify test works with.
type bundle struct {
	own *Issuer
	idp *fakeIdP
	v   *Verifier
	now time.Time
}

// setup returns a Verifier trusting berth's own issuer and a fake Cognito-like
// external issuer (groups in "cognito:groups").
func setup(t *testing.T) *bundle {
	t.Helper()
	b := &bundle{own: newTestIssuer(t, "berth", "berth"), idp: newFakeIdP(t), now: time.Now()}
	v, err := NewVerifier(t.Context(), b.own, []ExternalIssuer{{
		IssuerURL:   b.idp.URL(),
		Audience:    "client-123",
		GroupsClaim: "cognito:groups",
	}})
	if err != nil {
		t.Fatal(err)
	}
	b.v = v
	return b
}

// issuerAt returns a copy of b.own whose clock reads now+d.
func (b *bundle) issuerAt(d time.Duration) *Issuer {
	i := *b.own
	i.now = func() time.Time { return time.Now().Add(d) }
	return &i
}

func mustMint(t *testing.T, i *Issuer, sub, username string, groups []string, ttl time.Duration) string {
	t.Helper()
	tok, err := i.Mint(sub, username, groups, ttl)
	if err != nil {
		t.Fatal(err)
	}
	return tok
}

func TestVerify_OwnRoundTrip(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name     string
		username string
		groups   []string
		want     berth.Actor
	}{
		{"admin", "ada", []string{"Admin", "customer"},
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "ada", Groups: []string{"Admin", "customer"}}},
		{"no groups", "bob", nil,
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "bob"}},
		{"no username falls back to sub", "", []string{"customer"},
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1", Groups: []string{"customer"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mustMint(t, b.own, "user-1", tt.username, tt.groups, time.Hour)
			got, err := b.v.Verify(t.Context(), tok)
			if err != nil {
				t.Fatal(err)
			}
			assertActor(t, got, tt.want)
		})
	}
}

func assertActor(t *testing.T, got *berth.Actor, want berth.Actor) {
	t.Helper()
	if got == nil {
		t.Fatal("nil actor")
	}
	if got.Kind != want.Kind || got.Subject != want.Subject || got.Username != want.Username ||
		!slices.Equal(got.Groups, want.Groups) {
		t.Fatalf("actor %+v, want %+v", *got, want)
	}
}

// Every refused token is UNAUTHENTICATED with a fixed, safe message.
func TestVerify_Refused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	pubPEM := func() []byte {
		der, err := x509.MarshalPKIXPublicKey(b.own.pub)
		if err != nil {
			t.Fatal(err)
		}
		return pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der})
	}()
	_, otherKey, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	own := claimsFor("berth", "berth", b.now)
	ext := claimsFor(b.idp.URL(), "client-123", b.now)
	edHeader := map[string]any{"alg": "EdDSA", "typ": "JWT", "kid": b.own.KeyID()}

	tests := []struct {
		name    string
		token   func(t *testing.T) string
		wantMsg string
	}{
		{"empty", func(*testing.T) string { return "" }, "malformed token"},
		{"garbage", func(*testing.T) string { return "not-a-token" }, "malformed token"},
		{"garbage with dots", func(*testing.T) string { return "a.b.c" }, "malformed token"},
		{"JSON serialization", func(*testing.T) string { return `{"payload":"e30","signatures":[]}` }, "malformed token"},
		{"too long", func(t *testing.T) string {
			return mustMint(t, b.own, "u", strings.Repeat("x", maxTokenLen), nil, time.Hour)
		}, "malformed token"},
		{"alg none", func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "none", "typ": "JWT"}, own, func(string) []byte { return nil })
		}, "invalid token algorithm"},
		{"alg none spelled None", func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "None"}, own, func(string) []byte { return nil })
		}, "invalid token algorithm"},
		{"HS256 with public key bytes", func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "HS256", "typ": "JWT", "kid": b.own.KeyID()}, own, hs256(b.own.pub))
		}, "invalid token algorithm"},
		{"HS256 with public key PEM", func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, own, hs256(pubPEM))
		}, "invalid token algorithm"},
		{"HS256 with JWKS bytes", func(t *testing.T) string {
			return handJWT(t, map[string]any{"alg": "HS256", "typ": "JWT"}, own, hs256(b.own.JWKS()))
		}, "invalid token algorithm"},
		{"EdDSA header with HMAC signature", func(t *testing.T) string {
			return handJWT(t, edHeader, own, hs256(b.own.pub))
		}, "invalid token signature"},
		{"signed by another Ed25519 key", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, otherKey, b.own.KeyID(), own)
		}, "invalid token signature"},
		{"another key, same issuer name", func(t *testing.T) string {
			return mustMint(t, newTestIssuer(t, "berth", "berth"), "user-1", "", []string{"Admin"}, time.Hour)
		}, "invalid token signature"},
		{"payload altered after signing", func(t *testing.T) string {
			tok := mustMint(t, b.own, "user-1", "", []string{"customer"}, time.Hour)
			parts := strings.Split(tok, ".")
			forged, _ := json.Marshal(with(own, "groups", []string{"Admin"}))
			return parts[0] + "." + base64.RawURLEncoding.EncodeToString(forged) + "." + parts[2]
		}, "invalid token signature"},
		{"unknown issuer", func(t *testing.T) string {
			return mustMint(t, newTestIssuer(t, "evil", "berth"), "user-1", "", nil, time.Hour)
		}, "unknown token issuer"},
		{"no issuer", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "iss", nil))
		}, "unknown token issuer"},
		{"wrong audience", func(t *testing.T) string {
			other, err := newIssuer(b.own.key, "berth", "someone-else")
			if err != nil {
				t.Fatal(err)
			}
			return mustMint(t, other, "user-1", "", nil, time.Hour)
		}, "invalid token audience"},
		{"no audience", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "aud", nil))
		}, "invalid token audience"},
		{"expired", func(t *testing.T) string {
			return mustMint(t, b.issuerAt(-2*time.Hour), "user-1", "", nil, time.Hour)
		}, "token expired"},
		{"expired just beyond leeway", func(t *testing.T) string {
			return mustMint(t, b.issuerAt(-time.Hour-Leeway-5*time.Second), "user-1", "", nil, time.Hour)
		}, "token expired"},
		{"no expiry", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "exp", nil))
		}, "invalid token claims"},
		{"not yet valid", func(t *testing.T) string {
			return mustMint(t, b.issuerAt(10*time.Minute), "user-1", "", nil, time.Hour)
		}, "token not yet valid"},
		// go-oidc decodes the registered claims itself and its errors are not
		// typed: a validly signed token with a malformed "nbf" (only the
		// issuer could make one) reads as a signature failure.
		{"nbf not a number", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "nbf", "soon"))
		}, "invalid token signature"},
		{"no subject", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "sub", nil))
		}, "invalid token claims"},
		{"groups not strings", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "groups", []any{"Admin", 7}))
		}, "invalid token claims"},
		{"groups an object", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), with(own, "groups", map[string]any{"Admin": true}))
		}, "invalid token claims"},

		// External issuer.
		{"external: wrong audience", func(t *testing.T) string {
			return b.idp.token(t, with(ext, "aud", "other-client"))
		}, "invalid token audience"},
		{"external: expired", func(t *testing.T) string {
			return b.idp.token(t, with(ext, "exp", b.now.Add(-time.Hour).Unix()))
		}, "token expired"},
		{"external: algorithm not in discovery", func(t *testing.T) string {
			return signJWT(t, jose.ES384, mustECKey(t, elliptic.P384()), b.idp.kid, ext)
		}, "invalid token algorithm"},
		{"external: signed by another key with the IdP's kid", func(t *testing.T) string {
			return signJWT(t, jose.ES256, newECKey(t), b.idp.kid, ext)
		}, "invalid token signature"},
		{"external: berth's own key cannot sign for the IdP", func(t *testing.T) string {
			return signJWT(t, jose.EdDSA, b.own.key, b.own.KeyID(), ext)
		}, "invalid token algorithm"},
		{"external: HS256 with the IdP's public key", func(t *testing.T) string {
			der, err := x509.MarshalPKIXPublicKey(b.idp.key.Public())
			if err != nil {
				t.Fatal(err)
			}
			return handJWT(t, map[string]any{"alg": "HS256", "kid": b.idp.kid}, ext, hs256(der))
		}, "invalid token algorithm"},
		{"external: IdP's key cannot sign for berth", func(t *testing.T) string {
			return b.idp.token(t, own)
		}, "invalid token algorithm"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			a, err := b.v.Verify(t.Context(), tt.token(t))
			if err == nil {
				t.Fatalf("token accepted as %+v", *a)
			}
			if a != nil {
				t.Errorf("actor %+v returned with error", *a)
			}
			var e *berth.Error
			if !errors.As(err, &e) || e.Code != berth.EUNAUTHENTICATED {
				t.Fatalf("error %v, want a *berth.Error with code UNAUTHENTICATED", err)
			}
			if e.Message != tt.wantMsg {
				t.Fatalf("message %q, want %q", e.Message, tt.wantMsg)
			}
		})
	}
}

func mustECKey(t *testing.T, c elliptic.Curve) *ecdsa.PrivateKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(c, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return k
}

// Clock skew of up to Leeway is tolerated on both ends.
func TestVerify_Leeway(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tests := []struct {
		name  string
		clock time.Duration // issuer's clock relative to the verifier's
	}{
		{"expired within leeway", -time.Hour + Leeway/2},
		{"issued slightly in the future", Leeway / 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			tok := mustMint(t, b.issuerAt(tt.clock), "user-1", "", nil, time.Hour)
			if _, err := b.v.Verify(t.Context(), tok); err != nil {
				t.Fatal(err)
			}
		})
	}
}

func TestVerify_External(t *testing.T) {
	t.Parallel()
	b := setup(t)
	base := claimsFor(b.idp.URL(), "client-123", b.now)
	tests := []struct {
		name   string
		claims map[string]any
		want   berth.Actor
	}{
		{"cognito groups and username",
			with(base, "cognito:groups", []string{"Admin", "customer"}, "cognito:username", "ada", "email", "ada@example.com"),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "ada", Groups: []string{"Admin", "customer"}}},
		{"preferred_username wins",
			with(base, "preferred_username", "Ada L.", "cognito:username", "ada"),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "Ada L."}},
		{"email fallback",
			with(base, "email", "ada@example.com"),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "ada@example.com"}},
		{"sub fallback",
			base,
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1"}},
		{"plain groups claim is not the configured one",
			with(base, "groups", []string{"Admin"}),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1"}},
		{"single group as a string",
			with(base, "cognito:groups", "customer"),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1", Groups: []string{"customer"}}},
		{"audience list containing the client",
			with(base, "aud", []string{"other", "client-123"}),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1"}},
		{"fractional dates",
			with(base, "exp", float64(b.now.Add(time.Hour).Unix())+0.5, "nbf", float64(b.now.Unix())+0.25),
			berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := b.v.Verify(t.Context(), b.idp.token(t, tt.claims))
			if err != nil {
				t.Fatal(err)
			}
			assertActor(t, got, tt.want)
		})
	}
}

func TestVerify_ExternalOptions(t *testing.T) {
	t.Parallel()
	now := time.Now()
	tests := []struct {
		name   string
		cfg    func(idp *fakeIdP) ExternalIssuer
		claims map[string]any
		want   berth.Actor
		// wantDiscovery is whether the discovery document is fetched.
		wantDiscovery bool
	}{
		{
			name: "JWKS URL skips discovery",
			cfg: func(idp *fakeIdP) ExternalIssuer {
				return ExternalIssuer{IssuerURL: idp.URL(), Audience: "kc", JWKSURL: idp.URL() + "/jwks"}
			},
			claims: map[string]any{"groups": []string{"staff"}, "preferred_username": "kim"},
			want:   berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "kim", Groups: []string{"staff"}},
		},
		{
			name: "custom username claim",
			cfg: func(idp *fakeIdP) ExternalIssuer {
				return ExternalIssuer{IssuerURL: idp.URL(), Audience: "kc", UsernameClaim: "nickname"}
			},
			claims:        map[string]any{"nickname": "kimmy", "preferred_username": "kim"},
			want:          berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "kimmy"},
			wantDiscovery: true,
		},
		{
			name: "custom username claim missing falls back to sub",
			cfg: func(idp *fakeIdP) ExternalIssuer {
				return ExternalIssuer{IssuerURL: idp.URL(), Audience: "kc", UsernameClaim: "nickname"}
			},
			claims:        map[string]any{"preferred_username": "kim"},
			want:          berth.Actor{Kind: berth.ActorUser, Subject: "user-1", Username: "user-1"},
			wantDiscovery: true,
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			idp := newFakeIdP(t)
			v, err := NewVerifier(t.Context(), nil, []ExternalIssuer{tt.cfg(idp)})
			if err != nil {
				t.Fatal(err)
			}
			claims := claimsFor(idp.URL(), "kc", now)
			for k, val := range tt.claims {
				claims[k] = val
			}
			got, err := v.Verify(t.Context(), idp.token(t, claims))
			if err != nil {
				t.Fatal(err)
			}
			assertActor(t, got, tt.want)
			if fetched := idp.discovery.Load() > 0; fetched != tt.wantDiscovery {
				t.Errorf("discovery fetched: %v, want %v", fetched, tt.wantDiscovery)
			}
		})
	}
}

func TestNewVerifier_Errors(t *testing.T) {
	t.Parallel()
	own := newTestIssuer(t, "berth", "berth")
	idp := newFakeIdP(t)
	noKeys := newFakeIdP(t)
	noKeys.publish(jose.JSONWebKey{Key: []byte("symmetric secret"), KeyID: "k", Algorithm: "HS256"})
	down := httptest.NewServer(http.NotFoundHandler())
	down.Close()

	tests := []struct {
		name     string
		own      *Issuer
		external []ExternalIssuer
		wantCode string
	}{
		{"nothing configured", nil, nil, berth.EINVALID},
		{"no issuer URL", own, []ExternalIssuer{{Audience: "a"}}, berth.EINVALID},
		{"no audience", own, []ExternalIssuer{{IssuerURL: idp.URL()}}, berth.EINVALID},
		{"same issuer as own", own, []ExternalIssuer{{IssuerURL: "berth", Audience: "a", JWKSURL: idp.URL() + "/jwks"}}, berth.EINVALID},
		{"configured twice", nil, []ExternalIssuer{
			{IssuerURL: idp.URL(), Audience: "a"}, {IssuerURL: idp.URL(), Audience: "b"},
		}, berth.EINVALID},
		{"discovery issuer mismatch", nil, []ExternalIssuer{{IssuerURL: idp.URL() + "/", Audience: "a"}}, berth.EINTERNAL},
		{"discovery not found", nil, []ExternalIssuer{{IssuerURL: idp.URL() + "/realms/x", Audience: "a"}}, berth.EINTERNAL},
		{"issuer down", nil, []ExternalIssuer{{IssuerURL: down.URL, Audience: "a"}}, berth.EINTERNAL},
		{"JWKS not found", nil, []ExternalIssuer{{IssuerURL: idp.URL(), Audience: "a", JWKSURL: idp.URL() + "/nope"}}, berth.EINTERNAL},
		{"no usable key", nil, []ExternalIssuer{{IssuerURL: noKeys.URL(), Audience: "a"}}, berth.EINTERNAL},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			v, err := NewVerifier(t.Context(), tt.own, tt.external)
			if err == nil {
				t.Fatalf("got a verifier with %d issuers", len(v.issuers))
			}
			if got := berth.ErrorCode(err); got != tt.wantCode {
				t.Fatalf("code %s, want %s (%v)", got, tt.wantCode, err)
			}
		})
	}
}

// A token naming a key the verifier has not seen makes it fetch the key set
// again, but at most once per minKeyRefresh: forged kids cannot turn berth
// into a request amplifier against the issuer, and a rotated key is picked up.
func TestVerify_ExternalKeyRotation(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ks := b.v.issuers[b.idp.URL()].keys
	var clock atomic.Int64
	clock.Store(time.Now().UnixNano())
	ks.now = func() time.Time { return time.Unix(0, clock.Load()) }
	advance := func(d time.Duration) { clock.Add(int64(d)) }
	base := claimsFor(b.idp.URL(), "client-123", b.now)
	if got := b.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("%d key set fetches at start, want 1", got)
	}

	// The IdP rotates to a new key; a token arrives right after the startup
	// fetch: too soon to fetch again, refused.
	newKey := newECKey(t)
	b.idp.publish(
		jose.JSONWebKey{Key: b.idp.key.Public(), KeyID: b.idp.kid, Algorithm: "ES256", Use: "sig"},
		jose.JSONWebKey{Key: newKey.Public(), KeyID: "idp-key-2", Algorithm: "ES256", Use: "sig"},
	)
	rotated := signJWT(t, jose.ES256, newKey, "idp-key-2", base)
	for range 5 {
		if _, err := b.v.Verify(t.Context(), rotated); berth.ErrorMessage(err) != "invalid token signature" {
			t.Fatalf("got %v, want invalid token signature", err)
		}
		if _, err := b.v.Verify(t.Context(), signJWT(t, jose.ES256, newECKey(t), rand.Text(), base)); err == nil {
			t.Fatal("forged token accepted")
		}
	}
	if got := b.idp.jwksHits.Load(); got != 1 {
		t.Fatalf("%d key set fetches, want 1: refresh is not rate limited", got)
	}

	// Once the interval has passed, one fetch picks up the new key.
	advance(minKeyRefresh + time.Second)
	if _, err := b.v.Verify(t.Context(), rotated); err != nil {
		t.Fatalf("token signed with the rotated key: %v", err)
	}
	if _, err := b.v.Verify(t.Context(), b.idp.token(t, base)); err != nil {
		t.Fatalf("token signed with the old key: %v", err)
	}
	if _, err := b.v.Verify(t.Context(), signJWT(t, jose.ES256, newECKey(t), rand.Text(), base)); err == nil {
		t.Fatal("forged token accepted")
	}
	if got := b.idp.jwksHits.Load(); got != 2 {
		t.Fatalf("%d key set fetches, want 2", got)
	}
}

// Verify is used by every request goroutine at once.
func TestVerify_Concurrent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ownTok := mustMint(t, b.own, "user-1", "ada", []string{"Admin"}, time.Hour)
	extTok := b.idp.token(t, with(claimsFor(b.idp.URL(), "client-123", b.now), "cognito:groups", []string{"customer"}))
	var wg sync.WaitGroup
	errs := make(chan error, 64)
	for g := range 16 {
		wg.Go(func() {
			for range 20 {
				tok := ownTok
				if g%2 == 1 {
					tok = extTok
				}
				if _, err := b.v.Verify(t.Context(), tok); err != nil {
					errs <- err
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// A cancelled request context fails only that request.
func TestVerify_CancelledContext(t *testing.T) {
	t.Parallel()
	b := setup(t)
	ctx, cancel := context.WithCancel(t.Context())
	cancel()
	_, err := b.v.Verify(ctx, signJWT(t, jose.ES256, newECKey(t), "unknown", claimsFor(b.idp.URL(), "client-123", b.now)))
	if berth.ErrorCode(err) != berth.EUNAUTHENTICATED {
		t.Fatalf("got %v, want UNAUTHENTICATED", err)
	}
	if _, err := b.v.Verify(t.Context(), b.idp.token(t, claimsFor(b.idp.URL(), "client-123", b.now))); err != nil {
		t.Fatal(err)
	}
}
