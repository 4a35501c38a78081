package auth

import (
	"bytes"
	"cmp"
	"context"
	"crypto"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"math"
	"slices"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/coreos/go-oidc/v3/oidc"
)

// Defaults of an ExternalIssuer and of the Verifier.
const (
	DefaultGroupsClaim = "groups"

	// Leeway is the clock skew tolerated on "exp" and "nbf".
	Leeway = 30 * time.Second

	// maxTokenLen bounds the work done on a token before its signature is
	// checked. Real tokens are a few kilobytes at most.
	maxTokenLen = 16 << 10

	// discoveryTimeout bounds NewVerifier's discovery and key fetches.
	discoveryTimeout = 30 * time.Second
)

// defaultUsernameClaims are tried in order when ExternalIssuer.UsernameClaim
// is empty.
var defaultUsernameClaims = []string{"preferred_username", "cognito:username", "email", "sub"}

// asymmetricAlgs are the only algorithms a token may ever be signed with:
// the asymmetric ones go-oidc supports. HMAC ("HS256"...) and "none" are
// never accepted, which rules out algorithm confusion with a public key.
var asymmetricAlgs = []string{
	oidc.RS256, oidc.RS384, oidc.RS512,
	oidc.ES256, oidc.ES384, oidc.ES512,
	oidc.PS256, oidc.PS384, oidc.PS512,
	oidc.EdDSA,
}

// ExternalIssuer trusts an external OIDC issuer (Cognito, Keycloak, Auth0…).
//
// With discovery, tokens may be signed with the asymmetric algorithms the
// discovery document lists in id_token_signing_alg_values_supported (RS256 if
// it lists none); with JWKSURL set, with any asymmetric algorithm matching
// the key's type. HMAC and "none" are never accepted.
//
// The audience is checked against "aud", so Cognito users must send the ID
// token: Cognito access tokens carry the client id in "client_id" and have
// no "aud".
type ExternalIssuer struct {
	IssuerURL     string // must equal the tokens' "iss"; discovery at IssuerURL/.well-known/openid-configuration unless JWKSURL is set
	Audience      string // required "aud" (client id)
	JWKSURL       string // optional: skip discovery and use this key set URL
	GroupsClaim   string // claim with the groups; default "groups" (Cognito: "cognito:groups")
	UsernameClaim string // default "preferred_username", falling back to "cognito:username", then "email", then "sub"
}

func (e ExternalIssuer) validate() error {
	switch {
	case e.IssuerURL == "":
		return berth.Errorf(berth.EINVALID, "external issuer: issuer URL is required")
	case e.Audience == "":
		return berth.Errorf(berth.EINVALID, "external issuer %s: audience is required", e.IssuerURL)
	}
	return nil
}

// trustedIssuer is everything Verify needs about one issuer.
type trustedIssuer struct {
	issuer   string
	audience string
	algs     []string // allowed "alg" values, a subset of asymmetricAlgs
	verifier *oidc.IDTokenVerifier
	keys     *remoteKeySet // nil for berth's own issuer

	groupsClaim    string
	usernameClaims []string // first non-empty string claim wins
}

// Verifier checks bearer tokens from berth's own issuer and from any
// configured external issuers. It is safe for concurrent use.
//
// Signatures, algorithms and the issuer are checked by go-oidc
// (oidc.IDTokenVerifier). go-oidc v3.21.0 supports EdDSA, both in its
// algorithm list and in oidc.StaticKeySet, which holds berth's own key.
// Audience, expiry and not-before are checked here, after the signature,
// rather than by go-oidc: its errors carry no type except for expiry (so
// they could only be told apart by matching their text), and its not-before
// leeway is a fixed five minutes. Doing them here gives each refusal its own
// safe message and the same 30-second leeway on both ends.
//
// Accepted tokens are remembered (tokenCache): a token seen again within
// TokenCacheTTL, and still inside its "exp" and "nbf", is accepted without
// checking its signature again. At most TokenCacheSize tokens are kept.
type Verifier struct {
	issuers map[string]*trustedIssuer
	leeway  time.Duration
	now     func() time.Time // time.Now; tests replace it
	cache   *tokenCache
}

// NewVerifier returns a Verifier trusting own (which may be nil) and every
// issuer in external. For each external issuer it fetches the discovery
// document (unless JWKSURL is set) and the key set, so it fails fast on a
// wrong URL or an issuer that is down. ctx, cut to 30 seconds, bounds
// discovery and may carry its HTTP client (oidc.ClientContext); key set
// fetches use their own client with a 10-second timeout.
//
// Returns INVALID if no issuer is configured, an external issuer lacks its
// URL or audience, or two issuers share an "iss".
func NewVerifier(ctx context.Context, own *Issuer, external []ExternalIssuer) (*Verifier, error) {
	v := &Verifier{issuers: make(map[string]*trustedIssuer), leeway: Leeway, now: time.Now,
		cache: newTokenCache(TokenCacheSize, TokenCacheTTL)}
	if own != nil {
		v.issuers[own.issuer] = &trustedIssuer{
			issuer:   own.issuer,
			audience: own.audience,
			algs:     []string{oidc.EdDSA},
			verifier: oidc.NewVerifier(own.issuer,
				&oidc.StaticKeySet{PublicKeys: []crypto.PublicKey{own.pub}},
				&oidc.Config{
					SupportedSigningAlgs: []string{oidc.EdDSA},
					SkipClientIDCheck:    true, // checked in Verify
					SkipExpiryCheck:      true, // checked in Verify
				}),
			groupsClaim:    "groups",
			usernameClaims: []string{"username", "sub"},
		}
	}
	if len(external) > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, discoveryTimeout)
		defer cancel()
	}
	for _, e := range external {
		if err := e.validate(); err != nil {
			return nil, err
		}
		if _, dup := v.issuers[e.IssuerURL]; dup {
			return nil, berth.Errorf(berth.EINVALID, "issuer %s is configured twice", e.IssuerURL)
		}
		t, err := newExternal(ctx, e)
		if err != nil {
			return nil, err
		}
		v.issuers[e.IssuerURL] = t
	}
	if len(v.issuers) == 0 {
		return nil, berth.Errorf(berth.EINVALID, "no token issuers configured")
	}
	return v, nil
}

func newExternal(ctx context.Context, e ExternalIssuer) (*trustedIssuer, error) {
	jwksURL, algs := e.JWKSURL, asymmetricAlgs
	if jwksURL == "" {
		p, err := oidc.NewProvider(ctx, e.IssuerURL)
		if err != nil {
			return nil, fmt.Errorf("auth: discover issuer %s: %w", e.IssuerURL, err)
		}
		var meta struct {
			JWKSURL string   `json:"jwks_uri"`
			Algs    []string `json:"id_token_signing_alg_values_supported"`
		}
		if err := p.Claims(&meta); err != nil {
			return nil, fmt.Errorf("auth: discover issuer %s: %w", e.IssuerURL, err)
		} else if meta.JWKSURL == "" {
			return nil, fmt.Errorf("auth: discover issuer %s: no jwks_uri", e.IssuerURL)
		}
		jwksURL = meta.JWKSURL
		algs = nil
		for _, a := range meta.Algs {
			if slices.Contains(asymmetricAlgs, a) {
				algs = append(algs, a)
			}
		}
		if len(algs) == 0 {
			algs = []string{oidc.RS256} // the algorithm OIDC requires every issuer to support
		}
	}
	keys := newRemoteKeySet(jwksURL, algs)
	if _, err := keys.refresh(ctx); err != nil {
		return nil, fmt.Errorf("auth: issuer %s: %w", e.IssuerURL, err)
	}
	t := &trustedIssuer{
		issuer:   e.IssuerURL,
		audience: e.Audience,
		algs:     algs,
		verifier: oidc.NewVerifier(e.IssuerURL, keys, &oidc.Config{
			SupportedSigningAlgs: algs,
			SkipClientIDCheck:    true, // checked in Verify
			SkipExpiryCheck:      true, // checked in Verify
		}),
		keys:           keys,
		groupsClaim:    cmp.Or(e.GroupsClaim, DefaultGroupsClaim),
		usernameClaims: defaultUsernameClaims,
	}
	if e.UsernameClaim != "" {
		t.usernameClaims = []string{e.UsernameClaim, "sub"}
	}
	return t, nil
}

// unauthenticated is the error of every refused token.
func unauthenticated(msg string) error { return berth.Errorf(berth.EUNAUTHENTICATED, "%s", msg) }

// Verify returns the actor (Kind berth.ActorUser, Subject = "sub", Username,
// Groups) for a valid token. It picks the issuer from the unverified "iss"
// claim, refuses an algorithm that issuer does not use, then checks the
// signature, the verified issuer, the audience, expiry and not-before (with
// a 30-second leeway).
//
// Returns UNAUTHENTICATED, with a message safe to show, for any token that is
// not valid: "malformed token", "unknown token issuer", "invalid token
// algorithm", "invalid token signature", "invalid token audience", "token
// expired", "token not yet valid" or "invalid token claims".
//
// A token accepted less than TokenCacheTTL ago is accepted again without
// its signature being checked, as long as its "exp" and "nbf" still hold;
// each call returns its own *berth.Actor.
func (v *Verifier) Verify(ctx context.Context, raw string) (*berth.Actor, error) {
	if raw == "" || len(raw) > maxTokenLen {
		return nil, unauthenticated("malformed token")
	}
	key, now := sha256.Sum256([]byte(raw)), v.now()
	if a, ok := v.cache.get(&key, now, v.leeway); ok {
		return a, nil
	}
	a, expiry, nbf, err := v.verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	v.cache.put(&key, a, expiry, nbf, now)
	return a, nil
}

// verify checks raw fully and returns its actor, its "exp" and its "nbf"
// (zero if absent).
func (v *Verifier) verify(ctx context.Context, raw string) (_ *berth.Actor, expiry, nbf time.Time, _ error) {
	fail := func(msg string) (*berth.Actor, time.Time, time.Time, error) {
		return nil, time.Time{}, time.Time{}, unauthenticated(msg)
	}
	alg, iss, ok := peek(raw)
	if !ok {
		return fail("malformed token")
	}
	t, ok := v.issuers[iss]
	if !ok {
		return fail("unknown token issuer")
	}
	if !slices.Contains(t.algs, alg) {
		return fail("invalid token algorithm")
	}
	// go-oidc parses with t.algs only, verifies the signature, decodes the
	// registered claims and compares the verified "iss" with t.issuer. Its
	// errors are untyped; past the checks above, a failure is almost always
	// the signature (otherwise a claim the issuer itself encoded wrongly).
	tok, err := t.verifier.Verify(ctx, raw)
	if err != nil {
		return fail("invalid token signature")
	}
	var claims map[string]json.RawMessage
	if err := tok.Claims(&claims); err != nil {
		return fail("invalid token claims")
	}

	now := v.now()
	if !slices.Contains(tok.Audience, t.audience) {
		return fail("invalid token audience")
	}
	if tok.Expiry.IsZero() {
		return fail("invalid token claims") // no "exp": never valid
	} else if now.After(tok.Expiry.Add(v.leeway)) {
		return fail("token expired")
	}
	nbf, present, err := numericDateClaim(claims, "nbf")
	if err != nil {
		return fail("invalid token claims")
	} else if present && nbf.After(now.Add(v.leeway)) {
		return fail("token not yet valid")
	}
	if tok.Subject == "" {
		return fail("invalid token claims")
	}
	groups, err := stringsClaim(claims, t.groupsClaim)
	if err != nil {
		return fail("invalid token claims")
	}
	return &berth.Actor{
		Kind:     berth.ActorUser,
		Subject:  tok.Subject,
		Username: firstStringClaim(claims, t.usernameClaims),
		Groups:   groups,
	}, tok.Expiry, nbf, nil
}

// peek reads the "alg" header and the "iss" claim of a compact JWS without
// verifying anything. They only choose which keys and algorithms to verify
// with.
func peek(raw string) (alg, iss string, ok bool) {
	parts := strings.Split(raw, ".")
	if len(parts) != 3 {
		return "", "", false
	}
	var header struct {
		Alg string `json:"alg"`
	}
	var payload struct {
		Iss string `json:"iss"`
	}
	if decodeSegment(parts[0], &header) != nil || decodeSegment(parts[1], &payload) != nil {
		return "", "", false
	}
	return header.Alg, payload.Iss, true
}

func decodeSegment(seg string, v any) error {
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		return err
	}
	return json.Unmarshal(b, v)
}

// numericDateClaim reads a NumericDate claim (seconds since the epoch, an
// integer or not).
func numericDateClaim(claims map[string]json.RawMessage, name string) (t time.Time, present bool, err error) {
	raw, ok := claims[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return time.Time{}, false, nil
	}
	var n json.Number
	if err := json.Unmarshal(raw, &n); err != nil {
		return time.Time{}, true, err
	}
	f, err := n.Float64()
	if err != nil {
		return time.Time{}, true, err
	} else if math.Abs(f) > 1e15 {
		return time.Time{}, true, errors.New("date out of range")
	}
	return time.Unix(int64(f), 0), true, nil
}

// stringsClaim reads a claim holding a list of strings, or a single string.
// A missing or null claim is an empty list; any other shape is an error, so
// a malformed groups claim refuses the token instead of granting nothing or
// something unexpected.
func stringsClaim(claims map[string]json.RawMessage, name string) ([]string, error) {
	raw, ok := claims[name]
	if !ok || bytes.Equal(raw, []byte("null")) {
		return nil, nil
	}
	var list []string
	if err := json.Unmarshal(raw, &list); err == nil {
		return slices.DeleteFunc(list, func(s string) bool { return s == "" }), nil
	}
	var one string
	if err := json.Unmarshal(raw, &one); err != nil {
		return nil, errors.New("claim is neither a string nor a list of strings")
	} else if one == "" {
		return nil, nil
	}
	return []string{one}, nil
}

// firstStringClaim returns the first of names whose claim is a non-empty
// string.
func firstStringClaim(claims map[string]json.RawMessage, names []string) string {
	for _, name := range names {
		var s string
		if raw, ok := claims[name]; ok && json.Unmarshal(raw, &s) == nil && s != "" {
			return s
		}
	}
	return ""
}
