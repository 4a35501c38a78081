package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"syscall"
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

// dbFlags are the flags that locate the database.
type dbFlags struct {
	data, database, synchronous string
	maxConns                    int
}

func (d *dbFlags) register(fs *flag.FlagSet) {
	fs.StringVar(&d.data, "data", "./berth-data", "data `directory`: the SQLite file, the token signing key")
	fs.StringVar(&d.database, "database", "", "database `URL`: sqlite:PATH or postgres://… (default: the SQLite file in --data)")
	fs.StringVar(&d.synchronous, "synchronous", "FULL", "SQLite synchronous pragma: FULL (a committed booking survives power loss) or NORMAL")
	fs.IntVar(&d.maxConns, "max-conns", 8, "database connection pool size (readers on SQLite)")
}

func (d *dbFlags) url() string {
	if d.database != "" {
		return d.database
	}
	return "sqlite:" + filepath.Join(d.data, "berth.db")
}

func (d *dbFlags) open(ctx context.Context, log *slog.Logger, clock berth.Clock) (*store.DB, error) {
	return store.Open(ctx, store.Config{URL: d.url(), Synchronous: d.synchronous, MaxConns: d.maxConns, Logger: log, Clock: clock})
}

func runServe(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	fs := newFlags("serve", stderr)
	var db dbFlags
	db.register(fs)
	addr := fs.String("addr", "127.0.0.1:8080", "listen `address` (port 0 picks a free port)")
	demo := fs.Bool("demo", false, "load demo flights and users (alice, bob, admin) unless already loaded")
	logLevel := fs.String("log-level", "info", "log level: debug, info, warn, error")
	holdTime := fs.Duration("hold-time", 15*time.Minute, "how long a booking may stay unconfirmed before it is cancelled")
	lease := fs.Duration("lease", 30*time.Second, "saga lease: how long before another runner resumes a silent runner's work")
	workers := fs.Int("workers", 64, "saga executions run at once (more make bigger group commits; each is a goroutine)")
	failRate := fs.Float64("payment-failure-rate", 0, "simulated payment provider: probability of a transient failure (demo)")
	stepAttempts := fs.Int("step-attempts", 6, "attempts of a saga step before it fails (compensation) or is dead-lettered")
	stepBackoff := fs.Duration("step-backoff", 200*time.Millisecond, "delay after a step's first failure; doubles up to 30s")
	tokenTTL := fs.Duration("token-ttl", time.Hour, "lifetime of tokens issued by signIn")
	oidcIssuer := fs.String("oidc-issuer", "", "trust tokens of this external OIDC issuer `URL` as well")
	oidcAudience := fs.String("oidc-audience", "", "audience (client id) required in external tokens")
	oidcGroups := fs.String("oidc-groups-claim", "groups", "claim holding the groups in external tokens (Cognito: cognito:groups)")
	oidcJWKS := fs.String("oidc-jwks-url", "", "key set URL of the external issuer (default: from its discovery document)")
	var limits httpapi.RateLimit
	fs.Float64Var(&limits.PerIP, "rate-limit-ip", 0, "requests per second allowed to one client address, 0 = no limit (429 over it; docs/SECURITY.md)")
	fs.Float64Var(&limits.PerIdentity, "rate-limit-identity", 0, "requests per second allowed to one token subject or API key, 0 = no limit")
	fs.IntVar(&limits.Burst, "rate-burst", 0, "requests a rate limit lets through at once after a quiet spell (0 = twice the rate)")
	fs.StringVar(&limits.ClientIPHeader, "client-ip-header", "", "header holding the client address set by a trusted reverse proxy (X-Forwarded-For, X-Real-IP); default: the connection's address")
	maxDepth := fs.Int("graphql-max-depth", graphql.DefaultMaxDepth, "deepest nesting of fields a GraphQL operation may have")
	maxComplexity := fs.Int("graphql-max-complexity", graphql.DefaultMaxComplexity, "highest cost a GraphQL operation may have (a page costs its limit times its selection)")
	if err := parse(fs, args); err != nil {
		return err
	}
	if err := limits.Validate(); err != nil {
		return err
	}
	log := newLogger(stderr, *logLevel)
	clock := berth.SystemClock{}

	if err := os.MkdirAll(db.data, 0o700); err != nil {
		return err
	}
	exclusive := false
	if strings.HasPrefix(db.url(), "sqlite:") {
		unlock, err := lockDir(db.data)
		if err != nil {
			return err
		}
		defer unlock()
		exclusive = true
	}
	s, err := db.open(ctx, log, clock)
	if err != nil {
		return err
	}
	defer s.Close()
	issuer, err := auth.LoadOrCreateIssuer(db.data, "berth", "berth")
	if err != nil {
		return err
	}
	var ext []auth.ExternalIssuer
	if *oidcIssuer != "" {
		ext = append(ext, auth.ExternalIssuer{IssuerURL: *oidcIssuer, Audience: *oidcAudience, GroupsClaim: *oidcGroups, JWKSURL: *oidcJWKS})
	}
	verifier, err := auth.NewVerifier(ctx, issuer, ext)
	if err != nil {
		return err
	}

	m := metrics.New(s)
	m.Inc("ColdStart", "booking", "serve")
	engine := saga.New(saga.Config{Store: s, Clock: clock, Logger: log, Lease: *lease, Workers: *workers, Exclusive: exclusive, OnStep: m.OnStep})
	bus := saga.NewBus(engine)
	sim := payment.NewSimulated(s)
	sim.FailureRate = *failRate
	notify.Register(engine, bus, notify.Config{Store: s, Clock: clock, OnResult: m.OnWebhook})
	loyalty.Subscribe(bus)
	air := airline.New(airline.Config{Store: s, Engine: engine, Bus: bus, Payments: sim, Logger: log, HoldTime: *holdTime,
		StepRetry:        saga.RetryPolicy{MaxAttempts: *stepAttempts, Initial: *stepBackoff, Max: 30 * time.Second},
		OnInvalidRequest: func() { m.Inc("InvalidBookingRequest", "booking", "processBooking") }})

	if *demo {
		if err := loadDemo(ctx, s, air, log); err != nil {
			return fmt.Errorf("demo data: %w", err)
		}
	}

	draining := make(chan struct{}) // closed by srv.Shutdown
	gql := graphql.NewHandler(graphql.Config{Airline: air, Store: s, Issuer: issuer, TokenTTL: *tokenTTL, Logger: log,
		MaxDepth: *maxDepth, MaxComplexity: *maxComplexity, Draining: draining})
	handler := httpapi.New(httpapi.Config{Store: s, Verifier: verifier, Issuer: issuer, GraphQL: gql, Metrics: m, Logger: log, Clock: clock,
		RateLimit: limits,
		Ready: func(ctx context.Context) error {
			return s.View(ctx, func(tx berth.Tx) error { _, err := tx.NextDue(); return err })
		}})

	ln, err := net.Listen("tcp", *addr)
	if err != nil {
		return err
	}
	srv := &http.Server{Handler: handler, ReadHeaderTimeout: 10 * time.Second, ReadTimeout: 30 * time.Second,
		WriteTimeout: 60 * time.Second, IdleTimeout: 2 * time.Minute, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelWarn)}
	srv.RegisterOnShutdown(func() { close(draining) }) // long-polls answer at once

	runCtx, cancel := context.WithCancel(ctx)
	defer cancel()
	engineDone := make(chan error, 1)
	go func() { engineDone <- engine.Run(runCtx) }()
	serveDone := make(chan error, 1)
	go func() { serveDone <- srv.Serve(ln) }()

	url := "http://" + ln.Addr().String()
	fmt.Fprintf(stdout, "berth %s listening on %s (database: %s)\n", version, url, s.Dialect())
	fmt.Fprintf(stdout, "  GraphQL:  %s/graphql  (GraphiQL in a browser: %s/graphiql/)\n", url, url)
	fmt.Fprintf(stdout, "  token:    go run ./cmd/berth token --data %s --sub alice\n", db.data)
	if *demo {
		fmt.Fprintf(stdout, "  demo users: alice / alice-password, bob / bob-password (customers), admin / admin-password (Admin)\n")
	}

	select {
	case <-ctx.Done():
	case err := <-serveDone:
		return err
	case err := <-engineDone:
		return fmt.Errorf("saga engine stopped: %w", err)
	}
	log.Info("shutting down")
	sctx, scancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer scancel()
	_ = srv.Shutdown(sctx)
	cancel()
	<-engineDone
	return nil
}

func newLogger(w io.Writer, level string) *slog.Logger {
	var l slog.Level
	if err := l.UnmarshalText([]byte(level)); err != nil {
		l = slog.LevelInfo
	}
	return slog.New(httpapi.LogHandler(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: l})))
}

// lockDir takes an exclusive lock on the data directory so that one berth
// server at a time uses an SQLite file (its runner then owns every lease).
func lockDir(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, "berth.lock"), os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return nil, err
	}
	if err := syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, syscall.EWOULDBLOCK) {
			return nil, fmt.Errorf("another berth server is using %s; stop it or use another --data", dir)
		}
		return nil, err
	}
	return func() { f.Close() }, nil
}
