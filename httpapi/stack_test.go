package httpapi_test

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/x509"
	"database/sql"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/graphql"
	"github.com/berthhq/berth/httpapi"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// apiStack is berth's HTTP handler over a real server socket, with SQLite,
// its own token issuer, the GraphQL API and metrics. The saga engine does
// not run, so that only requests write, and a trigger counts every row
// written.
type apiStack struct {
	t      *testing.T
	srv    *httptest.Server
	db     *store.DB
	raw    *sql.DB
	issuer *auth.Issuer
	key    ed25519.PrivateKey // the issuer's signing key
	logs   *syncBuffer
}

func newAPIStack(t *testing.T, limits httpapi.RateLimit) *apiStack {
	t.Helper()
	ctx := context.Background()
	dir := t.TempDir()
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(dir, "berth.db"), Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	engine := saga.New(saga.Config{Store: db, Logger: quiet})
	bus := saga.NewBus(engine)
	air := airline.New(airline.Config{Store: db, Engine: engine, Bus: bus, Payments: payment.NewSimulated(db), Logger: quiet})
	issuer, err := auth.LoadOrCreateIssuer(dir, "berth", "berth")
	if err != nil {
		t.Fatal(err)
	}
	verifier, err := auth.NewVerifier(ctx, issuer, nil)
	if err != nil {
		t.Fatal(err)
	}
	logs := &syncBuffer{}
	log := slog.New(slog.NewTextHandler(logs, nil))
	gql := graphql.NewHandler(graphql.Config{Airline: air, Store: db, Issuer: issuer, Logger: log,
		PasswordParams: auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}})
	h := httpapi.New(httpapi.Config{Store: db, Verifier: verifier, Issuer: issuer, GraphQL: gql, Metrics: metrics.New(db), Logger: log,
		RateLimit: limits, Ready: func(context.Context) error { return nil }})
	srv := httptest.NewServer(h)
	t.Cleanup(srv.Close)

	pemBytes, err := os.ReadFile(filepath.Join(dir, auth.KeyFileName))
	if err != nil {
		t.Fatal(err)
	}
	block, _ := pem.Decode(pemBytes)
	k, err := x509.ParsePKCS8PrivateKey(block.Bytes)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := sql.Open("sqlite", "file:"+filepath.Join(dir, "berth.db")+"?_pragma=busy_timeout(5000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	s := &apiStack{t: t, srv: srv, db: db, raw: raw, issuer: issuer, key: k.(ed25519.PrivateKey), logs: logs}
	s.countWrites()
	return s
}

// syncBuffer is a buffer safe for the server's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string { b.mu.Lock(); defer b.mu.Unlock(); return b.b.String() }

// countWrites installs triggers counting the rows written to every table.
func (s *apiStack) countWrites() {
	rows, err := s.raw.Query(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'goose%'`)
	if err != nil {
		s.t.Fatal(err)
	}
	var tables []string
	for rows.Next() {
		var n string
		_ = rows.Scan(&n)
		tables = append(tables, n)
	}
	rows.Close()
	stmts := []string{`CREATE TABLE zz_writes (tbl TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0)`}
	for _, t := range tables {
		stmts = append(stmts, `INSERT INTO zz_writes (tbl) VALUES ('`+t+`')`)
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, `CREATE TRIGGER zz_writes_`+t+`_`+ev+` AFTER `+ev+` ON `+t+` BEGIN UPDATE zz_writes SET n = n + 1 WHERE tbl = '`+t+`'; END`)
		}
	}
	for _, st := range stmts {
		if _, err := s.raw.Exec(st); err != nil {
			s.t.Fatalf("%s: %v", st, err)
		}
	}
}

// writes returns the number of rows written so far.
func (s *apiStack) writes() int64 {
	var n int64
	if err := s.raw.QueryRow(`SELECT sum(n) FROM zz_writes`).Scan(&n); err != nil {
		s.t.Fatal(err)
	}
	return n
}

// result is a decoded response: GraphQL's errors or REST's error.
type result struct {
	status int
	header http.Header
	body   []byte
	Data   map[string]json.RawMessage `json:"data"`
	Errors []struct {
		Message    string            `json:"message"`
		Extensions map[string]string `json:"extensions"`
	} `json:"errors"`
	Error *struct{ Code, Message string } `json:"error"`
}

// code returns the first GraphQL error's code, or the REST error's.
func (r *result) code() string {
	if len(r.Errors) > 0 {
		return r.Errors[0].Extensions["code"]
	}
	if r.Error != nil {
		return r.Error.Code
	}
	return ""
}

// do sends a request and decodes its JSON answer; it fails the test on a
// 5xx or a body that is not JSON.
func (s *apiStack) do(req *http.Request) *result {
	s.t.Helper()
	resp, err := s.srv.Client().Do(req)
	if err != nil {
		s.t.Fatalf("%s %s: %v", req.Method, req.URL.Path, err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	r := &result{status: resp.StatusCode, header: resp.Header, body: b}
	if resp.StatusCode >= 500 {
		s.t.Fatalf("%s %s: %d %s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, r); err != nil {
		s.t.Fatalf("%s %s: %d, not JSON: %.300s", req.Method, req.URL.Path, resp.StatusCode, b)
	}
	return r
}

// gql posts a GraphQL operation with header pairs.
func (s *apiStack) gql(query string, vars map[string]any, headers ...string) *result {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, s.srv.URL+"/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return s.do(req)
}

// token mints a token with the issuer: sub and groups.
func (s *apiStack) token(sub string, groups ...string) string {
	s.t.Helper()
	tok, err := s.issuer.Mint(sub, sub, groups, time.Hour)
	if err != nil {
		s.t.Fatal(err)
	}
	return tok
}

// apiKey creates an API key in the store and returns the full key.
func (s *apiStack) apiKey(mutate func(*berth.APIKey)) string {
	s.t.Helper()
	id, secret, full, err := auth.NewAPIKey()
	if err != nil {
		s.t.Fatal(err)
	}
	k := &berth.APIKey{ID: id, Name: "test", SecretHash: auth.HashAPIKeySecret(secret), CreatedAt: time.Now()}
	if mutate != nil {
		mutate(k)
	}
	if err := s.db.Update(context.Background(), func(tx berth.Tx) error { return tx.CreateAPIKey(k) }); err != nil {
		s.t.Fatal(err)
	}
	return full
}

// flight creates a flight as Admin and returns its id.
func (s *apiStack) flight() string {
	s.t.Helper()
	r := s.gql(`mutation { createFlight(input: {departureDate: "2027-02-01T08:00:00Z", departureAirportCode: "LGW", departureAirportName: "Gatwick",
		departureCity: "London", departureLocale: "Europe/London", arrivalDate: "2027-02-01T10:00:00Z", arrivalAirportCode: "MAD",
		arrivalAirportName: "Barajas", arrivalCity: "Madrid", arrivalLocale: "Europe/Madrid", ticketPrice: 100, ticketCurrency: "EUR",
		flightNumber: 1, seatCapacity: 10}) { id } }`, nil, "Authorization", "Bearer "+s.token("admin-sub", berth.GroupAdmin))
	var f struct{ ID string }
	if err := json.Unmarshal(r.Data["createFlight"], &f); err != nil || f.ID == "" {
		s.t.Fatalf("createFlight: %s", r.body)
	}
	return f.ID
}

// jwt makes a compact JWS of header and claims, signed by sign (nil: an
// empty signature, as alg none has).
func jwt(header, claims map[string]any, sign func(signingInput []byte) []byte) string {
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return b64(b)
	}
	in := enc(header) + "." + enc(claims)
	var sig []byte
	if sign != nil {
		sig = sign([]byte(in))
	}
	return in + "." + b64(sig)
}

func b64(b []byte) string { return base64.RawURLEncoding.EncodeToString(b) }
