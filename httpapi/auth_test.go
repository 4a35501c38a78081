package httpapi_test

import (
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/httpapi"
)

// TestBadCredentialsOverHTTP: every forged, expired or misdirected token
// and every bad API key is refused with 401, WWW-Authenticate and
// UNAUTHENTICATED before any operation runs, on every route, and nothing
// is written, even by operations anonymous callers may run (signUp).
func TestBadCredentialsOverHTTP(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, httpapi.RateLimit{})
	flightID := s.flight()
	now := time.Now()
	claims := func(kv ...any) map[string]any {
		c := map[string]any{"iss": "berth", "aud": []string{"berth"}, "sub": "mallory", "groups": []string{berth.GroupAdmin},
			"iat": now.Unix(), "nbf": now.Unix(), "exp": now.Add(time.Hour).Unix(), "jti": "x"}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == nil {
				delete(c, kv[i].(string))
			} else {
				c[kv[i].(string)] = kv[i+1]
			}
		}
		return c
	}
	header := func(alg string) map[string]any {
		return map[string]any{"alg": alg, "typ": "JWT", "kid": s.issuer.KeyID()}
	}
	signWith := func(key ed25519.PrivateKey) func([]byte) []byte {
		return func(in []byte) []byte { return ed25519.Sign(key, in) }
	}
	own := signWith(s.key)
	_, otherKey, _ := ed25519.GenerateKey(rand.Reader)
	var jwks struct{ Keys []struct{ X string } }
	_ = json.Unmarshal(s.issuer.JWKS(), &jwks)
	hs256 := func(secret []byte) func([]byte) []byte {
		return func(in []byte) []byte { m := hmac.New(sha256.New, secret); m.Write(in); return m.Sum(nil) }
	}
	valid := jwt(header("EdDSA"), claims(), own)
	parts := strings.Split(valid, ".")
	tampered := parts[0] + "." + b64([]byte(`{"iss":"berth","aud":["berth"],"sub":"admin","groups":["Admin"],"exp":`+
		strings.Repeat("9", 10)+`}`)) + "." + parts[2]

	bearer := func(tok string) []string { return []string{"Authorization", "Bearer " + tok} }
	for _, c := range []struct {
		name    string
		headers []string
		message string
	}{
		{"alg none", bearer(jwt(header("none"), claims(), nil)), "algorithm"},
		{"alg none with a valid signature", bearer(jwt(header("none"), claims(), own)), "algorithm"},
		{"HS256 keyed with the public key", bearer(jwt(header("HS256"), claims(), hs256([]byte(jwks.Keys[0].X)))), "algorithm"},
		{"another key", bearer(jwt(header("EdDSA"), claims(), signWith(otherKey))), "signature"},
		{"no kid, another key", bearer(jwt(map[string]any{"alg": "EdDSA"}, claims(), signWith(otherKey))), "signature"},
		{"tampered claims", bearer(tampered), "signature"},
		{"expired", bearer(jwt(header("EdDSA"), claims("exp", now.Add(-time.Minute).Unix(), "iat", now.Add(-time.Hour).Unix()), own)), "expired"},
		{"no exp", bearer(jwt(header("EdDSA"), claims("exp", nil), own)), "claims"},
		{"not yet valid", bearer(jwt(header("EdDSA"), claims("nbf", now.Add(time.Hour).Unix()), own)), "not yet valid"},
		{"wrong issuer", bearer(jwt(header("EdDSA"), claims("iss", "https://evil.example"), own)), "issuer"},
		{"no issuer", bearer(jwt(header("EdDSA"), claims("iss", nil), own)), "issuer"},
		{"wrong audience", bearer(jwt(header("EdDSA"), claims("aud", []string{"another-app"}), own)), "audience"},
		{"no subject", bearer(jwt(header("EdDSA"), claims("sub", nil), own)), "claims"},
		{"groups not a list", bearer(jwt(header("EdDSA"), claims("groups", map[string]any{"Admin": true}), own)), "claims"},
		{"two parts", bearer(parts[0] + "." + parts[1]), "malformed"},
		{"garbage", bearer("not-a-token"), "malformed"},
		{"20 KiB", bearer(strings.Repeat("a", 20<<10)), "malformed"},
		{"Basic scheme", []string{"Authorization", "Basic YWRtaW46YWRtaW4="}, "Bearer"},
		{"empty bearer", []string{"Authorization", "Bearer "}, "Bearer"},
		{"bearer without a space", []string{"Authorization", "Bearer" + valid}, "Bearer"},
		{"API key: malformed", []string{"X-Api-Key", "bk_nope"}, "API key"},
		{"API key: wrong secret", []string{"X-Api-Key", s.apiKey(nil)[:len("bk_")+20] + strings.Repeat("A", 40)}, "API key"},
		{"API key: revoked", []string{"X-Api-Key", s.apiKey(func(k *berth.APIKey) { k.RevokedAt = now.Add(-time.Minute) })}, "API key"},
		{"API key: expired", []string{"X-Api-Key", s.apiKey(func(k *berth.APIKey) { k.ExpiresAt = now.Add(-time.Minute) })}, "API key"},
		{"API key: unknown", []string{"X-Api-Key", "bk_" + strings.Repeat("A", 20) + "_" + strings.Repeat("B", 40)}, "API key"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			before := s.writes()
			for _, op := range []struct{ query string }{
				{`mutation { createCharge(amount: 100, currency: "EUR", token: "tok_visa") { id } }`},
				{`mutation { signUp(username: "mallory", password: "a long password") { sub } }`},
				{`mutation($id: ID!) { deleteFlight(input: {id: $id}) { id } }`},
				{`{ listFlights { items { id } } }`},
			} {
				r := s.gql(op.query, map[string]any{"id": flightID}, c.headers...)
				if r.status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED" || r.header.Get("WWW-Authenticate") == "" {
					t.Fatalf("%s: %d %s", op.query, r.status, r.body)
				}
				if !strings.Contains(r.Errors[0].Message, c.message) {
					t.Errorf("message %q does not say %q", r.Errors[0].Message, c.message)
				}
				if len(r.Data) > 0 {
					t.Fatalf("data with a refused credential: %s", r.body)
				}
			}
			// REST routes refuse them too, in their shape.
			req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/metrics", nil)
			req.Header.Set(c.headers[0], c.headers[1])
			if r := s.do(req); r.status != http.StatusUnauthorized || r.code() != "UNAUTHENTICATED" {
				t.Fatalf("GET /metrics: %d %s", r.status, r.body)
			}
			if n := s.writes(); n != before {
				t.Fatalf("%d rows written", n-before)
			}
		})
	}
	s.t = t

	// The controls: the untampered token and a good key work, and write.
	before := s.writes()
	r := s.gql(`mutation { createCharge(amount: 100, currency: "EUR", token: "tok_visa") { id } }`, nil, bearer(valid)...)
	must(t, r.status == 200 && len(r.Errors) == 0, "a valid token: %d %s", r.status, r.body)
	must(t, s.writes() > before, "a valid token's charge wrote nothing")
	r = s.gql(`{ listFlights { items { id } } }`, nil, "X-Api-Key", s.apiKey(nil))
	must(t, r.status == 200 && len(r.Errors) == 0, "a valid API key: %d %s", r.status, r.body)
	if strings.Contains(s.logs.String(), "panic") {
		t.Fatalf("logs:\n%s", s.logs)
	}
}

func must(t *testing.T, ok bool, format string, args ...any) {
	t.Helper()
	if !ok {
		t.Fatalf(format, args...)
	}
}
