package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// cheapPasswords keeps argon2id fast in tests.
var cheapPasswords = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1, SaltLen: 16, KeyLen: 16}

// Test actors, chosen by the X-Test-Actor header of a request.
const (
	asAnonymous = ""
	asAdmin     = "admin"
	asAlice     = "alice"
	asBob       = "bob"
	asAPIKey    = "apikey"
)

func actorFor(name string) *berth.Actor {
	switch name {
	case asAnonymous:
		return nil
	case asAdmin:
		return &berth.Actor{Kind: berth.ActorUser, Subject: "admin-sub", Username: "admin", Groups: []string{berth.GroupAdmin}}
	case asAPIKey:
		return &berth.Actor{Kind: berth.ActorAPIKey, Subject: "key-1"}
	}
	return &berth.Actor{Kind: berth.ActorUser, Subject: name, Username: name, Groups: []string{berth.GroupCustomer}}
}

// withTestActor stands in for the HTTP middleware that verifies tokens.
func withTestActor(h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := actorFor(r.Header.Get("X-Test-Actor")); a != nil {
			r = r.WithContext(berth.NewContextWithActor(r.Context(), a))
		}
		h.ServeHTTP(w, r)
	})
}

// stack is a real berth behind the GraphQL handler: SQLite, the saga engine,
// the simulated payment provider, the airline service.
type stack struct {
	t      *testing.T
	h      http.Handler
	db     *store.DB
	store  *hookStore
	air    *airline.Service
	issuer *auth.Issuer
	logs   *syncBuffer
}

func setup(t *testing.T, opts ...func(*Config)) *stack {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	quiet := slog.New(slog.NewTextHandler(io.Discard, nil))
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + t.TempDir() + "/b.db", Logger: quiet})
	if err != nil {
		t.Fatal(err)
	}
	engine := saga.New(saga.Config{Store: db, Logger: quiet, Poll: 50 * time.Millisecond})
	bus := saga.NewBus(engine)
	loyalty.Subscribe(bus)
	hs := &hookStore{Store: db}
	air := airline.New(airline.Config{Store: hs, Engine: engine, Bus: bus, Payments: payment.NewSimulated(db), Logger: quiet,
		StepRetry: saga.RetryPolicy{MaxAttempts: 2, Initial: 10 * time.Millisecond, Max: 20 * time.Millisecond}})
	issuer, err := auth.LoadOrCreateIssuer(t.TempDir(), "berth", "berth")
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- engine.Run(ctx) }()
	t.Cleanup(func() {
		cancel()
		<-done
		_ = db.Close()
	})
	logs := &syncBuffer{}
	cfg := Config{Airline: air, Store: hs, Issuer: issuer, PasswordParams: cheapPasswords,
		Logger: slog.New(slog.NewTextHandler(logs, nil))}
	for _, o := range opts {
		o(&cfg)
	}
	return &stack{t: t, h: withTestActor(NewHandler(cfg)), db: db, store: hs, air: air, issuer: issuer, logs: logs}
}

// hookStore is the store with a hook on View and a count of GetFlights
// calls, to inject failures and observe batching.
type hookStore struct {
	berth.Store
	onView     atomic.Pointer[func() error]
	getFlights atomic.Int64
}

func (s *hookStore) View(ctx context.Context, fn func(berth.Tx) error) error {
	if h := s.onView.Load(); h != nil {
		if err := (*h)(); err != nil {
			return err
		}
	}
	return s.Store.View(ctx, func(tx berth.Tx) error { return fn(countingTx{tx, s}) })
}

type countingTx struct {
	berth.Tx
	s *hookStore
}

func (t countingTx) GetFlights(ids []string) (map[string]*berth.Flight, error) {
	t.s.getFlights.Add(1)
	return t.Tx.GetFlights(ids)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

// gqlError is one error of a response.
type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

func (e gqlError) code() string { s, _ := e.Extensions["code"].(string); return s }

// response is a decoded GraphQL response and its HTTP status.
type response struct {
	Status int
	Data   map[string]json.RawMessage `json:"data"`
	Errors []gqlError                 `json:"errors"`
	raw    string
}

// code returns the code of the first error, "" if there is none.
func (r *response) code() string {
	if len(r.Errors) == 0 {
		return ""
	}
	return r.Errors[0].code()
}

// send serves one HTTP request and decodes the response, failing the test
// on a 5xx status, a body that is not a GraphQL response, or an error
// without extensions.code.
func (s *stack) send(req *http.Request) *response {
	s.t.Helper()
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	r := &response{Status: rec.Code, raw: rec.Body.String()}
	if rec.Code >= 500 {
		s.t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/json") {
		s.t.Fatalf("Content-Type %q: %s", ct, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), r); err != nil {
		s.t.Fatalf("status %d, body is not JSON: %v: %s", rec.Code, err, rec.Body)
	}
	for _, e := range r.Errors {
		if e.code() == "" {
			s.t.Fatalf("error without extensions.code: %s", rec.Body)
		}
	}
	return r
}

// gql posts query as actor with variables and extra header pairs.
func (s *stack) gql(actor, query string, vars map[string]any, headers ...string) *response {
	s.t.Helper()
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	return s.post(actor, "application/json", body, headers...)
}

func (s *stack) post(actor, contentType string, body []byte, headers ...string) *response {
	s.t.Helper()
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", contentType)
	req.Header.Set("X-Test-Actor", actor)
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	return s.send(req)
}

// must returns the data of field from a response without errors, decoded
// into a T.
func must[T any](s *stack, r *response, field string) T {
	s.t.Helper()
	var v T
	if len(r.Errors) > 0 || r.Status != http.StatusOK {
		s.t.Fatalf("%s: status %d, errors: %s", field, r.Status, r.raw)
	}
	if err := json.Unmarshal(r.Data[field], &v); err != nil {
		s.t.Fatalf("%s: %v: %s", field, err, r.raw)
	}
	return v
}

// wantError checks that r failed with code (and HTTP status).
func (s *stack) wantError(r *response, status int, code string) gqlError {
	s.t.Helper()
	if r.Status != status || r.code() != code {
		s.t.Fatalf("want status %d code %s; got status %d: %s", status, code, r.Status, r.raw)
	}
	return r.Errors[0]
}

type flight struct {
	ID                   string `json:"id"`
	DepartureDate        string `json:"departureDate"`
	DepartureAirportCode string `json:"departureAirportCode"`
	ArrivalAirportCode   string `json:"arrivalAirportCode"`
	TicketPrice          int    `json:"ticketPrice"`
	TicketCurrency       string `json:"ticketCurrency"`
	FlightNumber         int    `json:"flightNumber"`
	SeatAllocation       *int   `json:"seatAllocation"`
	SeatCapacity         int    `json:"seatCapacity"`
}

const flightFields = `id departureDate departureAirportCode departureAirportName departureCity departureLocale
  arrivalDate arrivalAirportCode arrivalAirportName arrivalCity arrivalLocale ticketPrice ticketCurrency
  flightNumber seatAllocation seatCapacity`

type booking struct {
	ID               string  `json:"id"`
	Status           string  `json:"status"`
	PaymentToken     string  `json:"paymentToken"`
	CheckedIn        *bool   `json:"checkedIn"`
	Customer         *string `json:"customer"`
	CreatedAt        *string `json:"createdAt"`
	BookingReference *string `json:"bookingReference"`
	OutboundFlight   *flight `json:"outboundFlight"`
}

const bookingFields = `id status paymentToken checkedIn customer createdAt bookingReference outboundFlight { id flightNumber seatCapacity }`

type page[T any] struct {
	Items     []T     `json:"items"`
	NextToken *string `json:"nextToken"`
}

// flightInput returns a createFlight input; change fields with kv pairs.
func flightInput(number int, dep, from, to string, seats int, kv ...any) map[string]any {
	arr := strings.Replace(dep, "T08", "T10", 1)
	if arr == dep {
		arr = dep[:11] + "23:59:00Z"
	}
	in := map[string]any{
		"departureDate": dep, "departureAirportCode": from, "departureAirportName": from + " Airport",
		"departureCity": from + " City", "departureLocale": "Europe/London",
		"arrivalDate": arr, "arrivalAirportCode": to, "arrivalAirportName": to + " Airport",
		"arrivalCity": to + " City", "arrivalLocale": "Europe/Madrid",
		"ticketPrice": 10000, "ticketCurrency": "EUR", "flightNumber": number, "seatCapacity": seats,
	}
	for i := 0; i+1 < len(kv); i += 2 {
		in[kv[i].(string)] = kv[i+1]
	}
	return in
}

func (s *stack) createFlight(in map[string]any) flight {
	s.t.Helper()
	r := s.gql(asAdmin, `mutation($in: CreateFlightInput!) { createFlight(input: $in) { `+flightFields+` } }`, map[string]any{"in": in})
	return must[flight](s, r, "createFlight")
}

// charge authorizes amount EUR with card token for actor and returns the charge id.
func (s *stack) charge(actor string, amount int, token string) string {
	s.t.Helper()
	r := s.gql(actor, `mutation($a: Int!, $t: String!) { createCharge(amount: $a, currency: "EUR", token: $t) { id amount currency status createdAt } }`,
		map[string]any{"a": amount, "t": token})
	c := must[struct {
		ID, Status, Currency, CreatedAt string
		Amount                          int
	}](s, r, "createCharge")
	if c.Status != "AUTHORIZED" || c.Amount != amount || c.Currency != "EUR" || len(c.CreatedAt) != len("2006-01-02T15:04:05.000Z") {
		s.t.Fatalf("createCharge: %+v", c)
	}
	return c.ID
}

const processBooking = `mutation($in: CreateBookingInput!) { processBooking(input: $in) { ` + bookingFields + ` } }`

// book starts a booking of flightID paid by chargeID.
func (s *stack) book(actor, flightID, chargeID string, headers ...string) booking {
	s.t.Helper()
	r := s.gql(actor, processBooking, map[string]any{"in": map[string]any{
		"bookingOutboundFlightId": flightID, "paymentToken": chargeID, "status": "UNCONFIRMED"}}, headers...)
	return must[booking](s, r, "processBooking")
}

// waitBooking polls getBooking until its status is not UNCONFIRMED.
func (s *stack) waitBooking(actor, id string) booking {
	s.t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		r := s.gql(actor, `query($id: ID!) { getBooking(id: $id) { `+bookingFields+` } }`, map[string]any{"id": id})
		b := must[booking](s, r, "getBooking")
		if b.Status != "UNCONFIRMED" {
			return b
		}
		if time.Now().After(deadline) {
			s.t.Fatalf("booking %s still UNCONFIRMED", id)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// noInternalErrors fails the test if the handler logged an internal error.
func (s *stack) noInternalErrors() {
	s.t.Helper()
	if l := s.logs.String(); strings.Contains(l, "internal error") || strings.Contains(l, "panic") {
		s.t.Fatalf("internal errors were logged:\n%s", l)
	}
}
