package auth

import (
	"crypto"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"fmt"
	"io/fs"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"time"

	"github.com/berthhq/berth"
	jose "github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// KeyFileName is the name of the signing key file inside the data directory.
const KeyFileName = "signing-key.pem"

// pemTypePrivateKey is the PEM block type of a PKCS#8 private key.
const pemTypePrivateKey = "PRIVATE KEY"

// Issuer is berth's own token issuer: an Ed25519 key kept in the data
// directory. It is safe for concurrent use.
type Issuer struct {
	issuer   string
	audience string
	key      ed25519.PrivateKey
	pub      ed25519.PublicKey
	kid      string
	jwks     []byte
	now      func() time.Time // time.Now; tests replace it
}

// LoadOrCreateIssuer reads DIR/signing-key.pem (a PKCS#8 PEM Ed25519 private
// key), creating it with mode 0600, and DIR with mode 0700 if missing, on
// first use. issuer is the "iss" claim of minted tokens and audience their
// "aud" claim (both typically "berth").
//
// Calls on the same directory, from one process or several, yield the same
// key: a new key is written to a temporary file and hard-linked into place,
// which never replaces an existing key, so of two concurrent creators the
// second loads the first one's key. An existing file that is not a valid
// Ed25519 key is an error and is left untouched.
//
// Returns INVALID if dir, issuer or audience is empty.
func LoadOrCreateIssuer(dir, issuer, audience string) (*Issuer, error) {
	switch {
	case dir == "":
		return nil, berth.Errorf(berth.EINVALID, "signing key directory is required")
	case issuer == "":
		return nil, berth.Errorf(berth.EINVALID, "token issuer is required")
	case audience == "":
		return nil, berth.Errorf(berth.EINVALID, "token audience is required")
	}
	key, err := loadOrCreateKey(filepath.Join(dir, KeyFileName))
	if err != nil {
		return nil, err
	}
	return newIssuer(key, issuer, audience)
}

func newIssuer(key ed25519.PrivateKey, issuer, audience string) (*Issuer, error) {
	pub := key.Public().(ed25519.PublicKey)
	jwk := jose.JSONWebKey{Key: pub, Algorithm: string(jose.EdDSA), Use: "sig"}
	thumb, err := jwk.Thumbprint(crypto.SHA256)
	if err != nil {
		return nil, fmt.Errorf("auth: key thumbprint: %w", err)
	}
	jwk.KeyID = base64.RawURLEncoding.EncodeToString(thumb)
	jwks, err := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{jwk}})
	if err != nil {
		return nil, fmt.Errorf("auth: marshal key set: %w", err)
	}
	return &Issuer{
		issuer:   issuer,
		audience: audience,
		key:      key,
		pub:      pub,
		kid:      jwk.KeyID,
		jwks:     jwks,
		now:      time.Now,
	}, nil
}

// loadOrCreateKey returns the key in path, creating it first if the file does
// not exist.
func loadOrCreateKey(path string) (ed25519.PrivateKey, error) {
	key, err := readKey(path)
	if err == nil || !errors.Is(err, fs.ErrNotExist) {
		return key, err
	}
	if err := createKey(path); err != nil {
		return nil, err
	}
	// Read back whichever key won: ours, or a concurrent creator's.
	return readKey(path)
}

func readKey(path string) (ed25519.PrivateKey, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("auth: read signing key: %w", err)
	}
	block, _ := pem.Decode(data)
	if block == nil || block.Type != pemTypePrivateKey {
		return nil, fmt.Errorf("auth: signing key %s: no %q PEM block", path, pemTypePrivateKey)
	}
	parsed, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		return nil, fmt.Errorf("auth: signing key %s: %w", path, err)
	}
	key, ok := parsed.(ed25519.PrivateKey)
	if !ok {
		return nil, fmt.Errorf("auth: signing key %s: %T is not an Ed25519 key", path, parsed)
	}
	return key, nil
}

// createKey writes a new key to path unless a file is already there: it
// writes a temporary file in the same directory and links it to path. Link
// fails if path exists, so an existing key is never replaced, and readers
// never see a half-written file. An existing path is not an error.
func createKey(path string) (err error) {
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("auth: create key directory: %w", err)
	}
	_, key, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return fmt.Errorf("auth: generate signing key: %w", err)
	}
	der, err := x509.MarshalPKCS8PrivateKey(key)
	if err != nil {
		return fmt.Errorf("auth: marshal signing key: %w", err)
	}
	data := pem.EncodeToMemory(&pem.Block{Type: pemTypePrivateKey, Bytes: der})

	tmp, err := os.CreateTemp(dir, ".signing-key-*.tmp") // mode 0600
	if err != nil {
		return fmt.Errorf("auth: create signing key: %w", err)
	}
	defer func() {
		_ = tmp.Close() // already closed on the happy path
		_ = os.Remove(tmp.Name())
	}()
	if err := tmp.Chmod(0o600); err != nil {
		return fmt.Errorf("auth: create signing key: %w", err)
	}
	if _, err := tmp.Write(data); err != nil {
		return fmt.Errorf("auth: write signing key: %w", err)
	}
	if err := tmp.Sync(); err != nil {
		return fmt.Errorf("auth: write signing key: %w", err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("auth: write signing key: %w", err)
	}
	if err := os.Link(tmp.Name(), path); err != nil {
		if errors.Is(err, fs.ErrExist) {
			return nil // a concurrent creator won; use its key
		}
		return fmt.Errorf("auth: install signing key: %w", err)
	}
	syncDir(dir)
	return nil
}

// syncDir makes a new directory entry durable where the platform allows it.
// Failure is ignored: the key is already in place and readable.
func syncDir(dir string) {
	d, err := os.Open(dir)
	if err != nil {
		return
	}
	_ = d.Sync()
	_ = d.Close()
}

// Issuer returns the "iss" claim of the tokens i mints.
func (i *Issuer) Issuer() string { return i.issuer }

// Audience returns the "aud" claim of the tokens i mints.
func (i *Issuer) Audience() string { return i.audience }

// KeyID returns the "kid" of i's key: the base64url RFC 7638 thumbprint of
// the public key.
func (i *Issuer) KeyID() string { return i.kid }

// accessClaims are the claims berth adds to the registered ones.
type accessClaims struct {
	Groups   []string `json:"groups"`
	Username string   `json:"username,omitempty"`
}

// Mint signs an access token for subject sub: a JWT (alg EdDSA, header kid)
// with claims iss, aud, sub, iat, nbf, exp (now+ttl), a random jti, "groups"
// and "username".
//
// Returns INVALID if sub is empty or ttl is not positive.
func (i *Issuer) Mint(sub, username string, groups []string, ttl time.Duration) (string, error) {
	if sub == "" {
		return "", berth.Errorf(berth.EINVALID, "token subject is required")
	} else if ttl <= 0 {
		return "", berth.Errorf(berth.EINVALID, "token lifetime must be positive")
	}
	signer, err := jose.NewSigner(
		jose.SigningKey{Algorithm: jose.EdDSA, Key: jose.JSONWebKey{Key: i.key, KeyID: i.kid}},
		(&jose.SignerOptions{}).WithType("JWT"),
	)
	if err != nil {
		return "", fmt.Errorf("auth: new signer: %w", err)
	}
	now := i.now().Truncate(time.Second)
	registered := jwt.Claims{
		Issuer:    i.issuer,
		Subject:   sub,
		Audience:  jwt.Audience{i.audience},
		IssuedAt:  jwt.NewNumericDate(now),
		NotBefore: jwt.NewNumericDate(now),
		Expiry:    jwt.NewNumericDate(now.Add(ttl)),
		ID:        rand.Text(),
	}
	extra := accessClaims{Groups: groups, Username: username}
	if extra.Groups == nil {
		extra.Groups = []string{} // "groups": [] rather than null
	}
	token, err := jwt.Signed(signer).Claims(registered).Claims(extra).Serialize()
	if err != nil {
		return "", fmt.Errorf("auth: sign token: %w", err)
	}
	return token, nil
}

// JWKS returns the JSON Web Key Set document with i's public key (use "sig",
// alg "EdDSA", its kid). The caller may modify the returned slice.
func (i *Issuer) JWKS() []byte { return slices.Clone(i.jwks) }

// JWKSHandler serves JWKS() as application/json to GET and HEAD requests,
// with a short Cache-Control so that a new key is picked up within minutes.
func (i *Issuer) JWKSHandler() http.Handler {
	body := i.JWKS()
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method != http.MethodGet && r.Method != http.MethodHead {
			w.Header().Set("Allow", "GET, HEAD")
			http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
			return
		}
		h := w.Header()
		h.Set("Content-Type", "application/json")
		h.Set("Cache-Control", "public, max-age=300")
		h.Set("X-Content-Type-Options", "nosniff")
		_, _ = w.Write(body)
	})
}
