package graphql

import (
	"context"
	"log/slog"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/99designs/gqlgen/complexity"
	"github.com/99designs/gqlgen/graphql/handler"
	"github.com/99designs/gqlgen/graphql/handler/extension"
	"github.com/99designs/gqlgen/graphql/handler/lru"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vikstrous/dataloadgen"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// Config configures the GraphQL handler. Zero values take the defaults.
type Config struct {
	// Airline is the airline service. Required.
	Airline *airline.Service
	// Store is berth's database, for accounts, executions and webhooks.
	// Required.
	Store berth.Store
	// Issuer mints the tokens of signUp and signIn. Nil disables both
	// (they answer FORBIDDEN): deployments that trust only an external
	// identity provider.
	Issuer *auth.Issuer
	// TokenTTL is the lifetime of tokens minted by signUp and signIn.
	// Defaults to 1 hour.
	TokenTTL time.Duration
	// PasswordParams are the argon2id parameters of new password hashes.
	// Defaults to auth.DefaultPasswordParams.
	PasswordParams auth.PasswordParams
	// Logger receives internal errors and recovered panics. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// MaxDepth bounds how deeply selections nest (introspection fields
	// excepted). Defaults to 12.
	MaxDepth int
	// MaxComplexity bounds an operation's cost: scalars cost 0, objects 1
	// plus their selections, a page field its limit argument (default 100)
	// times the cost of its selection, a list without a limit 20 times, a
	// mutation 50 plus its selection (signUp and signIn 1000). Defaults to
	// 2000.
	MaxComplexity int
	// MaxWaiters bounds the getBooking requests that wait at once for a
	// status (waitFor). Over it, getBooking answers at once with the
	// booking as it is, so that waiting clients cannot take every read
	// connection. Defaults to 256.
	MaxWaiters int
	// Draining, when closed, makes waiting getBooking requests answer at
	// once with the booking as it is (the server is shutting down and
	// waits for requests in flight).
	Draining <-chan struct{}
}

// Defaults of Config.
const (
	DefaultTokenTTL      = time.Hour
	DefaultMaxDepth      = 12
	DefaultMaxComplexity = 2000
	DefaultMaxWaiters    = 256
)

// Limits that are not configurable.
const (
	// MaxBodyBytes bounds a POST request's body; larger is 413.
	MaxBodyBytes = 1 << 20
	// maxTokens bounds the tokens the parser reads from one query
	// (GraphiQL's introspection query has 155). Validation compares the
	// fields of a selection set pairwise, so its work grows with the
	// square of this: 15000 let a 30 KB query of repeated fields cost
	// seconds of CPU; 5000, about a tenth of a second.
	maxTokens = 5000
	// cacheEntries is the size of the parsed-query and persisted-query
	// caches; cacheMaxQuery the longest query text they keep, so that a
	// flood of huge distinct queries cannot fill memory.
	cacheEntries  = 1000
	cacheMaxQuery = 8 << 10
)

func (c Config) withDefaults() Config {
	if c.Airline == nil {
		panic("graphql: Config.Airline is required")
	}
	if c.Store == nil {
		panic("graphql: Config.Store is required")
	}
	if c.TokenTTL <= 0 {
		c.TokenTTL = DefaultTokenTTL
	}
	if c.PasswordParams == (auth.PasswordParams{}) {
		c.PasswordParams = auth.DefaultPasswordParams
	}
	if c.Logger == nil {
		c.Logger = slog.Default()
	}
	if c.MaxDepth <= 0 {
		c.MaxDepth = DefaultMaxDepth
	}
	if c.MaxComplexity <= 0 {
		c.MaxComplexity = DefaultMaxComplexity
	}
	if c.MaxWaiters <= 0 {
		c.MaxWaiters = DefaultMaxWaiters
	}
	return c
}

// server is the GraphQL endpoint.
type server struct {
	cfg Config
	gql *handler.Server
}

// NewHandler returns the GraphQL endpoint: POST with a JSON body
// {query, variables, operationName, extensions}, and GET with ?query=
// (queries only). Callers put the verified actor in the request context
// (berth.NewContextWithActor) before it; anonymous requests have none.
// It panics if cfg lacks Airline or Store.
func NewHandler(cfg Config) http.Handler {
	cfg = cfg.withDefaults()
	r := &resolver{
		air:      cfg.Airline,
		store:    cfg.Store,
		log:      cfg.Logger,
		id:       newIdentity(cfg.Store, cfg.Issuer, cfg.TokenTTL, cfg.PasswordParams),
		waiters:  make(chan struct{}, cfg.MaxWaiters),
		draining: cfg.Draining,
	}
	es := generated.NewExecutableSchema(generated.Config{Resolvers: r, Complexity: complexityRoot()})
	srv := handler.New(es)
	srv.AddTransport(postTransport{})
	srv.AddTransport(getTransport{})
	srv.AddTransport(otherMethods{})
	srv.SetQueryCache(newCache(func(query string, _ *ast.QueryDocument) bool { return len(query) <= cacheMaxQuery }))
	srv.SetParserTokenLimit(maxTokens)
	srv.Use(extension.Introspection{})
	srv.Use(extension.AutomaticPersistedQuery{Cache: newCache(func(_ string, query string) bool { return len(query) <= cacheMaxQuery })})
	srv.Use(depthLimit{max: cfg.MaxDepth})
	srv.Use(extension.FixedComplexityLimit(cfg.MaxComplexity, complexity.WithFixedScalarValue(0)))
	srv.AroundFields(refuseNUL)
	p := presenter{log: cfg.Logger}
	srv.SetErrorPresenter(p.present)
	srv.SetRecoverFunc(p.recover)
	return &server{cfg: cfg, gql: srv}
}

// ServeHTTP serves one GraphQL request.
func (s *server) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	req := &request{
		idempotencyKey: strings.TrimSpace(r.Header.Get("Idempotency-Key")),
		air:            s.cfg.Airline,
	}
	s.gql.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), requestKey{}, req)))
}

// request is what resolvers know about the HTTP request they serve.
type request struct {
	// idempotencyKey is the Idempotency-Key header, for processBooking.
	idempotencyKey string

	// air, flightsOnce and flights make the loader of flightLoader.
	air         *airline.Service
	flightsOnce sync.Once
	flights     *dataloadgen.Loader[string, *berth.Flight]
}

// flightLoader returns the loader that batch-loads Booking.outboundFlight
// for this request, made on first use (most requests, the polls of
// getBooking among them, select no flight), or nil outside the handler.
func (r *request) flightLoader() *dataloadgen.Loader[string, *berth.Flight] {
	if r.air == nil {
		return nil
	}
	r.flightsOnce.Do(func() { r.flights = newFlightLoader(r.air) })
	return r.flights
}

type requestKey struct{}

// requestFrom returns the request state ServeHTTP put in ctx (an empty one
// if there is none, e.g. when the schema runs outside the handler).
func requestFrom(ctx context.Context) *request {
	if r, ok := ctx.Value(requestKey{}).(*request); ok {
		return r
	}
	return &request{}
}

// cache is an LRU cache that keeps only entries fits accepts.
type cache[T any] struct {
	lru  *lru.LRU[T]
	fits func(key string, value T) bool
}

func newCache[T any](fits func(key string, value T) bool) cache[T] {
	return cache[T]{lru: lru.New[T](cacheEntries), fits: fits}
}

func (c cache[T]) Get(ctx context.Context, key string) (T, bool) { return c.lru.Get(ctx, key) }

func (c cache[T]) Add(ctx context.Context, key string, value T) {
	if c.fits(key, value) {
		c.lru.Add(ctx, key, value)
	}
}
