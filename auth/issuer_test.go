package auth

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	jose "github.com/go-jose/go-jose/v4"
)

// newTestIssuer returns an issuer with a key in a fresh temp dir.
func newTestIssuer(t *testing.T, iss, aud string) *Issuer {
	t.Helper()
	i, err := LoadOrCreateIssuer(t.TempDir(), iss, aud)
	if err != nil {
		t.Fatal(err)
	}
	return i
}

func TestLoadOrCreateIssuer_SameKeyTwice(t *testing.T) {
	t.Parallel()
	dir := filepath.Join(t.TempDir(), "data", "keys") // does not exist yet

	first, err := LoadOrCreateIssuer(dir, "berth", "berth")
	if err != nil {
		t.Fatal(err)
	}
	second, err := LoadOrCreateIssuer(dir, "berth", "berth")
	if err != nil {
		t.Fatal(err)
	}
	if !first.key.Equal(second.key) {
		t.Fatal("second load returned a different key")
	}
	if first.KeyID() == "" || first.KeyID() != second.KeyID() {
		t.Fatalf("key ids %q and %q, want equal and non-empty", first.KeyID(), second.KeyID())
	}
	if first.Issuer() != "berth" || first.Audience() != "berth" {
		t.Fatalf("Issuer() = %q, Audience() = %q", first.Issuer(), first.Audience())
	}

	// A token minted by one instance verifies with the other (server and CLI).
	tok, err := first.Mint("u1", "ada", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	v, err := NewVerifier(t.Context(), second, nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := v.Verify(t.Context(), tok); err != nil {
		t.Fatalf("token from first instance refused by second: %v", err)
	}

	if runtime.GOOS != "windows" {
		assertMode(t, filepath.Join(dir, KeyFileName), 0o600)
		assertMode(t, dir, 0o700)
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 || entries[0].Name() != KeyFileName {
		t.Fatalf("dir holds %v, want only %s", entries, KeyFileName)
	}
	data, err := os.ReadFile(filepath.Join(dir, KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	if block, _ := pem.Decode(data); block == nil || block.Type != "PRIVATE KEY" {
		t.Fatalf("key file is not a PKCS#8 PEM block:\n%s", data)
	}
}

func assertMode(t *testing.T, path string, want os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if got := fi.Mode().Perm(); got != want {
		t.Errorf("%s: mode %v, want %v", path, got, want)
	}
}

// Many processes starting at once (server replicas, the CLI) must agree on
// one key: exactly one creator wins and everyone loads its key.
func TestLoadOrCreateIssuer_ConcurrentCreators(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	const n = 20
	var (
		start  = make(chan struct{})
		wg     sync.WaitGroup
		kids   [n]string
		errs   [n]error
		issuer [n]*Issuer
	)
	for g := range n {
		wg.Go(func() {
			<-start
			issuer[g], errs[g] = LoadOrCreateIssuer(dir, "berth", "berth")
			if errs[g] == nil {
				kids[g] = issuer[g].KeyID()
			}
		})
	}
	close(start)
	wg.Wait()
	for g := range n {
		if errs[g] != nil {
			t.Fatalf("creator %d: %v", g, errs[g])
		}
		if kids[g] != kids[0] {
			t.Fatalf("creator %d got key %s, creator 0 got %s", g, kids[g], kids[0])
		}
	}
	entries, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(entries) != 1 {
		t.Fatalf("dir holds %d entries, want only the key (temp files left behind?)", len(entries))
	}
}

func TestLoadOrCreateIssuer_Errors(t *testing.T) {
	t.Parallel()
	ecKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	ecDER, err := x509.MarshalPKCS8PrivateKey(ecKey)
	if err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		file     []byte // content of an existing key file; nil for none
		iss, aud string
		wantCode string // "" for any error
	}{
		{name: "empty issuer", iss: "", aud: "berth", wantCode: berth.EINVALID},
		{name: "empty audience", iss: "berth", aud: "", wantCode: berth.EINVALID},
		{name: "garbage file", file: []byte("not a key\n"), iss: "berth", aud: "berth"},
		{name: "empty file", file: []byte{}, iss: "berth", aud: "berth"},
		{name: "wrong PEM type", file: pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: ecDER}), iss: "berth", aud: "berth"},
		{name: "ECDSA key", file: pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: ecDER}), iss: "berth", aud: "berth"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			path := filepath.Join(dir, KeyFileName)
			if tt.file != nil {
				if err := os.WriteFile(path, tt.file, 0o600); err != nil {
					t.Fatal(err)
				}
			}
			_, err := LoadOrCreateIssuer(dir, tt.iss, tt.aud)
			if err == nil {
				t.Fatal("no error")
			}
			if tt.wantCode != "" && berth.ErrorCode(err) != tt.wantCode {
				t.Fatalf("code %s, want %s (%v)", berth.ErrorCode(err), tt.wantCode, err)
			}
			if tt.file != nil {
				// A bad key file is reported, never replaced.
				got, err := os.ReadFile(path)
				if err != nil || string(got) != string(tt.file) {
					t.Fatalf("key file changed: %q, %v", got, err)
				}
			}
		})
	}
	t.Run("empty dir", func(t *testing.T) {
		t.Parallel()
		if _, err := LoadOrCreateIssuer("", "berth", "berth"); berth.ErrorCode(err) != berth.EINVALID {
			t.Fatalf("got %v, want INVALID", err)
		}
	})
}

func TestIssuer_JWKS(t *testing.T) {
	t.Parallel()
	i := newTestIssuer(t, "berth", "berth")

	doc := i.JWKS()
	if !json.Valid(doc) {
		t.Fatalf("JWKS is not JSON: %s", doc)
	}
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(doc, &set); err != nil {
		t.Fatalf("go-jose cannot read the JWKS: %v", err)
	}
	keys := set.Key(i.KeyID())
	if len(keys) != 1 || len(set.Keys) != 1 {
		t.Fatalf("JWKS has %d keys, %d with kid %s; want 1 and 1", len(set.Keys), len(keys), i.KeyID())
	}
	k := keys[0]
	if k.Use != "sig" || k.Algorithm != "EdDSA" || !k.IsPublic() {
		t.Fatalf("key use=%q alg=%q public=%v", k.Use, k.Algorithm, k.IsPublic())
	}
	if pub, ok := k.Key.(ed25519.PublicKey); !ok || !pub.Equal(i.pub) {
		t.Fatalf("JWKS key %T is not the issuer's public key", k.Key)
	}
	var raw struct {
		Keys []map[string]any `json:"keys"`
	}
	if err := json.Unmarshal(doc, &raw); err != nil {
		t.Fatal(err)
	}
	if _, leaked := raw.Keys[0]["d"]; leaked {
		t.Fatal("JWKS contains the private key")
	}

	// The key verifies a minted token.
	tok, err := i.Mint("u1", "", nil, time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	jws, err := jose.ParseSigned(tok, []jose.SignatureAlgorithm{jose.EdDSA})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := jws.Verify(&k); err != nil {
		t.Fatalf("JWKS key does not verify a minted token: %v", err)
	}

	// Callers cannot change the issuer's copy.
	doc[0] = 'x'
	if i.JWKS()[0] != '{' {
		t.Fatal("JWKS returned the issuer's own buffer")
	}
}

func TestIssuer_JWKSHandler(t *testing.T) {
	t.Parallel()
	i := newTestIssuer(t, "berth", "berth")
	tests := []struct {
		method     string
		wantStatus int
		wantBody   bool
	}{
		{http.MethodGet, http.StatusOK, true},
		{http.MethodHead, http.StatusOK, false},
		{http.MethodPost, http.StatusMethodNotAllowed, false},
	}
	for _, tt := range tests {
		t.Run(tt.method, func(t *testing.T) {
			t.Parallel()
			rec := httptest.NewRecorder()
			i.JWKSHandler().ServeHTTP(rec, httptest.NewRequest(tt.method, "/.well-known/jwks.json", nil))
			if rec.Code != tt.wantStatus {
				t.Fatalf("status %d, want %d", rec.Code, tt.wantStatus)
			}
			if tt.wantStatus != http.StatusOK {
				return
			}
			if ct := rec.Header().Get("Content-Type"); ct != "application/json" {
				t.Errorf("Content-Type %q", ct)
			}
			if cc := rec.Header().Get("Cache-Control"); !strings.Contains(cc, "max-age=") {
				t.Errorf("Cache-Control %q", cc)
			}
			if tt.wantBody && rec.Body.String() != string(i.JWKS()) {
				t.Errorf("body %s, want JWKS()", rec.Body)
			}
		})
	}
}

func TestIssuer_MintClaims(t *testing.T) {
	t.Parallel()
	i := newTestIssuer(t, "berth", "berth-api")
	now := time.Date(2030, 1, 2, 3, 4, 5, 0, time.UTC)
	i.now = func() time.Time { return now }

	tok, err := i.Mint("user-1", "ada", []string{"Admin", "customer"}, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	parts := strings.Split(tok, ".")
	if len(parts) != 3 {
		t.Fatalf("not a compact JWS: %s", tok)
	}
	var header map[string]any
	decodeJSONSegment(t, parts[0], &header)
	if header["alg"] != "EdDSA" || header["kid"] != i.KeyID() || header["typ"] != "JWT" {
		t.Fatalf("header %v", header)
	}
	var claims map[string]any
	decodeJSONSegment(t, parts[1], &claims)
	want := map[string]any{
		"iss": "berth", "aud": "berth-api", "sub": "user-1", "username": "ada",
		"iat": float64(now.Unix()), "nbf": float64(now.Unix()), "exp": float64(now.Add(15 * time.Minute).Unix()),
	}
	for k, v := range want {
		if claims[k] != v {
			t.Errorf("claim %s = %v, want %v", k, claims[k], v)
		}
	}
	if jti, _ := claims["jti"].(string); len(jti) < 16 {
		t.Errorf("jti %q, want a random id", claims["jti"])
	}
	if g, _ := claims["groups"].([]any); len(g) != 2 || g[0] != "Admin" || g[1] != "customer" {
		t.Errorf("groups %v", claims["groups"])
	}

	// Two tokens never share a jti.
	tok2, err := i.Mint("user-1", "ada", nil, 15*time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	var claims2 map[string]any
	decodeJSONSegment(t, strings.Split(tok2, ".")[1], &claims2)
	if claims2["jti"] == claims["jti"] {
		t.Error("two tokens with the same jti")
	}
	if g, ok := claims2["groups"].([]any); !ok || len(g) != 0 {
		t.Errorf("nil groups minted as %v, want []", claims2["groups"])
	}
}

func decodeJSONSegment(t *testing.T, seg string, v any) {
	t.Helper()
	b, err := base64.RawURLEncoding.DecodeString(seg)
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, v); err != nil {
		t.Fatal(err)
	}
}

func TestIssuer_MintErrors(t *testing.T) {
	t.Parallel()
	i := newTestIssuer(t, "berth", "berth")
	tests := []struct {
		name string
		sub  string
		ttl  time.Duration
	}{
		{"empty subject", "", time.Minute},
		{"zero ttl", "u1", 0},
		{"negative ttl", "u1", -time.Minute},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			_, err := i.Mint(tt.sub, "", nil, tt.ttl)
			if berth.ErrorCode(err) != berth.EINVALID {
				t.Fatalf("got %v, want INVALID", err)
			}
		})
	}
}
