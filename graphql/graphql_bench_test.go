package graphql_test

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/graphql"
	"github.com/berthhq/berth/httpapi"
	"github.com/berthhq/berth/loyalty"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/notify"
	"github.com/berthhq/berth/payment"
	"github.com/berthhq/berth/saga"
	"github.com/berthhq/berth/store"
)

// The GraphQL path of a booking, in process (httptest, no network), on
// SQLite, with the saga engine not running so that only the request is
// measured:
//
//   - handler: graphql.NewHandler with the actor put in the context
//     directly (parsing, validation, resolvers, the request transaction,
//     the response);
//   - stack: httpapi.New in front of it, as berth serve runs it (request
//     id, body limit, bearer-token verification, metrics, access log).
//
// Run with -benchmem: allocations per request are part of the answer.

type benchGQL struct {
	air     *airline.Service
	flight  string
	handler http.Handler // graphql only; the actor comes from X-Bench-Sub
	stack   http.Handler // httpapi + graphql
	tokens  []string
}

const benchCustomers = 64

func newBenchGQL(b *testing.B) *benchGQL {
	b.Helper()
	ctx := context.Background()
	quiet := slog.New(slog.DiscardHandler)
	dir := b.TempDir()
	db, err := store.Open(ctx, store.Config{URL: "sqlite:" + dir + "/berth.db", Logger: quiet})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { db.Close() })
	e := saga.New(saga.Config{Store: db, Logger: quiet}) // not run
	bus := saga.NewBus(e)
	notify.Register(e, bus, notify.Config{Store: db})
	loyalty.Subscribe(bus)
	air := airline.New(airline.Config{Store: db, Engine: e, Bus: bus, Payments: payment.NewSimulated(db), Logger: quiet})
	issuer, err := auth.LoadOrCreateIssuer(dir, "berth", "berth")
	if err != nil {
		b.Fatal(err)
	}
	verifier, err := auth.NewVerifier(ctx, issuer, nil)
	if err != nil {
		b.Fatal(err)
	}
	gql := graphql.NewHandler(graphql.Config{Airline: air, Store: db, Issuer: issuer, Logger: quiet})
	stack := httpapi.New(httpapi.Config{Store: db, Verifier: verifier, Issuer: issuer, GraphQL: gql, Metrics: metrics.New(db),
		Logger: quiet, Clock: berth.SystemClock{}})
	r := &benchGQL{air: air, stack: stack, handler: http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		a := &berth.Actor{Kind: berth.ActorUser, Subject: req.Header.Get("X-Bench-Sub"), Groups: []string{berth.GroupCustomer}}
		gql.ServeHTTP(w, req.WithContext(berth.NewContextWithActor(req.Context(), a)))
	})}
	for i := range benchCustomers {
		tok, err := issuer.Mint(benchSub(i), benchSub(i), []string{berth.GroupCustomer}, time.Hour)
		if err != nil {
			b.Fatal(err)
		}
		r.tokens = append(r.tokens, tok)
	}
	admin := berth.NewContextWithActor(ctx, &berth.Actor{Kind: berth.ActorUser, Subject: "bench-admin", Groups: []string{berth.GroupAdmin}})
	f := &berth.Flight{FlightNumber: 1, DepartureDate: "2027-06-01T08:00:00Z", ArrivalDate: "2027-06-01T10:30:00Z",
		DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD"}
	f.Capacity, f.Price, f.Currency = 100000, 10000, "EUR"
	if _, err := air.CreateFlight(admin, f); err != nil {
		b.Fatal(err)
	}
	r.flight = f.ID
	return r
}

func benchSub(i int) string { return fmt.Sprintf("bench-c%d", i%benchCustomers) }

// charges authorizes n payments, one per request to come.
func (r *benchGQL) charges(b *testing.B, n int) []string {
	out := make([]string, n)
	for i := range out {
		ctx := berth.NewContextWithActor(context.Background(), &berth.Actor{Kind: berth.ActorUser, Subject: benchSub(i),
			Groups: []string{berth.GroupCustomer}})
		ch, err := r.air.Charges().Create(ctx, 10000, "EUR", "tok_visa", "")
		if err != nil {
			b.Fatal(err)
		}
		out[i] = ch.ID
	}
	return out
}

// do serves one GraphQL request as customer i and fails b on any error.
func (r *benchGQL) do(b *testing.B, h http.Handler, stack bool, i int, query string, vars map[string]any) []byte {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(string(body)))
	req.Header.Set("Content-Type", "application/json")
	if stack {
		req.Header.Set("Authorization", "Bearer "+r.tokens[i%benchCustomers])
	} else {
		req.Header.Set("X-Bench-Sub", benchSub(i))
	}
	w := httptest.NewRecorder()
	h.ServeHTTP(w, req)
	if w.Code != http.StatusOK || strings.Contains(w.Body.String(), `"errors"`) {
		b.Fatalf("%d %s", w.Code, w.Body.String())
	}
	return w.Body.Bytes()
}

const (
	benchProcess = `mutation($f: ID!, $p: String!) { processBooking(input: {bookingOutboundFlightId: $f, paymentToken: $p}) { id status } }`
	benchCharge  = `mutation($a: Int!, $c: String!) { createCharge(amount: $a, currency: $c, token: "tok_visa") { id status } }`
	benchGet     = `query($id: ID!) { getBooking(id: $id) { status } }`
)

// paths are the two ways in: the GraphQL handler alone, and the whole
// HTTP stack with token verification.
var paths = []struct {
	name  string
	stack bool
}{{"handler", false}, {"stack", true}}

func (r *benchGQL) path(stack bool) http.Handler {
	if stack {
		return r.stack
	}
	return r.handler
}

func BenchmarkGraphQLProcessBooking(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			r := newBenchGQL(b)
			h := r.path(p.stack)
			charges := r.charges(b, b.N)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.do(b, h, p.stack, i, benchProcess, map[string]any{"f": r.flight, "p": charges[i]})
			}
		})
	}
}

func BenchmarkGraphQLCreateCharge(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			r := newBenchGQL(b)
			h := r.path(p.stack)
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.do(b, h, p.stack, i, benchCharge, map[string]any{"a": 10000, "c": "EUR"})
			}
		})
	}
}

// BenchmarkGraphQLGetBooking is the poll a customer sends while waiting for
// CONFIRMED: a read-only transaction behind the GraphQL machinery.
func BenchmarkGraphQLGetBooking(b *testing.B) {
	for _, p := range paths {
		b.Run(p.name, func(b *testing.B) {
			r := newBenchGQL(b)
			h := r.path(p.stack)
			charges := r.charges(b, benchCustomers)
			ids := make([]string, benchCustomers)
			for i := range ids {
				var out struct {
					Data struct{ ProcessBooking struct{ ID string } }
				}
				_ = json.Unmarshal(r.do(b, h, p.stack, i, benchProcess, map[string]any{"f": r.flight, "p": charges[i]}), &out)
				ids[i] = out.Data.ProcessBooking.ID
			}
			b.ReportAllocs()
			b.ResetTimer()
			for i := range b.N {
				r.do(b, h, p.stack, i, benchGet, map[string]any{"id": ids[i%benchCustomers]})
			}
		})
	}
}
