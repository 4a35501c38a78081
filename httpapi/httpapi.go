// Package httpapi is berth's HTTP server: authentication middleware (bearer
// tokens and API keys), request ids, structured access logs, body limits,
// GraphQL and GraphiQL routes, JWKS, health and metrics.
package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"log/slog"
	"net/http"
	"runtime/debug"
	"strings"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/graphiql"
	"github.com/berthhq/berth/metrics"
)

// Config configures the HTTP handler.
type Config struct {
	Store    berth.Store
	Verifier *auth.Verifier
	Issuer   *auth.Issuer
	GraphQL  http.Handler
	Metrics  *metrics.Metrics
	Logger   *slog.Logger
	Clock    berth.Clock
	// MaxBody bounds request bodies. Defaults to 1 MiB.
	MaxBody int64
	// Ready reports whether berth can serve (the database answers).
	Ready func(ctx context.Context) error
	// RateLimit limits requests per client address and per identity
	// (ratelimit.go). The zero value: no limits.
	RateLimit RateLimit
}

// New returns berth's HTTP handler.
func New(cfg Config) http.Handler {
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	if cfg.Clock == nil {
		cfg.Clock = berth.SystemClock{}
	}
	if cfg.MaxBody <= 0 {
		cfg.MaxBody = 1 << 20
	}
	mux := http.NewServeMux()
	gq := graphiql.Handler("/graphiql/", "/graphql")
	mux.Handle("/graphiql/", gq)
	mux.Handle("GET /graphql", browserOr(gq, cfg.GraphQL))
	mux.Handle("POST /graphql", cfg.GraphQL)
	mux.Handle("GET /.well-known/jwks.json", cfg.Issuer.JWKSHandler())
	mux.Handle("GET /metrics", cfg.Metrics.Handler())
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) {
		writeJSON(w, http.StatusOK, map[string]string{"status": "ok"})
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), 2*time.Second)
		defer cancel()
		if cfg.Ready != nil {
			if err := cfg.Ready(ctx); err != nil {
				cfg.Logger.Warn("not ready", "err", err)
				writeJSON(w, http.StatusServiceUnavailable, map[string]string{"status": "unavailable"})
				return
			}
		}
		writeJSON(w, http.StatusOK, map[string]string{"status": "ready"})
	})
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/graphiql/", http.StatusFound)
	})
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		WriteError(w, berth.Errorf(berth.ENOTFOUND, "no such route: %s %s", r.Method, r.URL.Path))
	})
	var h http.Handler = mux
	h = limitByIdentity(newLimiter(cfg.RateLimit.PerIdentity, cfg.RateLimit.Burst, cfg.RateLimit.MaxKeys, cfg.Clock.Now), h)
	h = authenticate(cfg, h)
	h = limitByIP(newLimiter(cfg.RateLimit.PerIP, cfg.RateLimit.Burst, cfg.RateLimit.MaxKeys, cfg.Clock.Now), cfg.RateLimit.ClientIPHeader, h)
	h = limitBody(cfg.MaxBody, h)
	h = observe(cfg, mux, h)
	return h
}

// browserOr serves the GraphiQL page to browsers and api to programs.
func browserOr(page, api http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Query().Get("query") == "" && strings.Contains(r.Header.Get("Accept"), "text/html") {
			page.ServeHTTP(w, r)
			return
		}
		api.ServeHTTP(w, r)
	})
}

type ctxKey int

const requestIDKey ctxKey = iota

// RequestID returns the request id in ctx ("" outside a request).
func RequestID(ctx context.Context) string {
	s, _ := ctx.Value(requestIDKey).(string)
	return s
}

type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// observe assigns a request id, recovers panics, logs and measures requests.
func observe(cfg Config, mux *http.ServeMux, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := cfg.Clock.Now()
		id := r.Header.Get("X-Request-Id")
		if id == "" || len(id) > 64 {
			var b [8]byte
			_, _ = rand.Read(b[:])
			id = hex.EncodeToString(b[:])
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey, id)
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if p := recover(); p != nil {
				cfg.Logger.ErrorContext(ctx, "panic serving request", "panic", p, "stack", string(debug.Stack()))
				if sw.status == 0 {
					WriteError(sw, berth.Errorf(berth.EINTERNAL, "internal error"))
				}
			}
			_, route := mux.Handler(r)
			if route == "" {
				route = "unmatched"
			}
			d := cfg.Clock.Now().Sub(start)
			cfg.Metrics.ObserveHTTP(metricMethod(r.Method), route, sw.status, d)
			if cfg.Logger.Enabled(ctx, slog.LevelDebug) { // spares boxing the attributes of a record nobody keeps
				cfg.Logger.DebugContext(ctx, "request", "method", r.Method, "path", r.URL.Path, "status", sw.status,
					"duration_ms", float64(d.Microseconds())/1000)
			}
		}()
		next.ServeHTTP(sw, r.WithContext(ctx))
	})
}

// metricMethod is the method label of a request's metrics: a standard
// method, or OTHER. The method is the client's choice, and each distinct
// label value would be a new series kept in memory for good.
func metricMethod(m string) string {
	switch m {
	case http.MethodGet, http.MethodHead, http.MethodPost, http.MethodPut, http.MethodPatch,
		http.MethodDelete, http.MethodOptions, http.MethodConnect, http.MethodTrace:
		return m
	}
	return "OTHER"
}

func limitBody(n int64, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.ContentLength > n {
			writeJSON(w, http.StatusRequestEntityTooLarge, gqlOrRESTError(r, berth.EINVALID, "the request body is larger than the limit"))
			return
		}
		r.Body = http.MaxBytesReader(w, r.Body, n)
		next.ServeHTTP(w, r)
	})
}

// authenticate puts the verified actor in the request context: a bearer
// token or an x-api-key. Bad credentials are refused with 401; none at all
// make an anonymous request, which the operations refuse as they must.
func authenticate(cfg Config, next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var actor *berth.Actor
		var err error
		if h := r.Header.Get("Authorization"); h != "" {
			scheme, tok, ok := strings.Cut(h, " ")
			if !ok || !strings.EqualFold(scheme, "Bearer") || strings.TrimSpace(tok) == "" {
				err = berth.Errorf(berth.EUNAUTHENTICATED, "the Authorization header must be \"Bearer <token>\"")
			} else {
				actor, err = cfg.Verifier.Verify(r.Context(), strings.TrimSpace(tok))
			}
		} else if k := r.Header.Get("X-Api-Key"); k != "" {
			actor, err = apiKeyActor(r.Context(), cfg, k)
		}
		if err != nil {
			w.Header().Set("WWW-Authenticate", `Bearer realm="berth"`)
			writeJSON(w, http.StatusUnauthorized, gqlOrRESTError(r, berth.ErrorCode(err), berth.ErrorMessage(err)))
			return
		}
		if actor != nil {
			r = r.WithContext(berth.NewContextWithActor(r.Context(), actor))
		}
		next.ServeHTTP(w, r)
	})
}

func apiKeyActor(ctx context.Context, cfg Config, key string) (*berth.Actor, error) {
	id, secret, err := auth.ParseAPIKey(key)
	if err != nil {
		return nil, err
	}
	var k *berth.APIKey
	err = cfg.Store.View(ctx, func(tx berth.Tx) (err error) { k, err = tx.GetAPIKey(id); return err })
	if berth.ErrorCode(err) == berth.ENOTFOUND || (err == nil && (!auth.CheckAPIKeySecret(k.SecretHash, secret) || !k.Active(cfg.Clock.Now()))) {
		return nil, berth.Errorf(berth.EUNAUTHENTICATED, "invalid or expired API key")
	} else if err != nil {
		return nil, err
	}
	return &berth.Actor{Kind: berth.ActorAPIKey, Subject: "apikey:" + k.ID, Username: k.Name}, nil
}

// gqlOrRESTError shapes an error for the route: GraphQL's errors array, or
// REST's {"error": {...}}.
func gqlOrRESTError(r *http.Request, code, msg string) any {
	if r.URL.Path == "/graphql" {
		return map[string]any{"errors": []any{map[string]any{"message": msg, "extensions": map[string]string{"code": code}}}}
	}
	return restError(code, msg)
}

func restError(code, msg string) any {
	return map[string]any{"error": map[string]string{"code": code, "message": msg}}
}

// codes maps error codes to HTTP statuses for REST responses.
var codes = map[string]int{
	berth.EINVALID:         http.StatusBadRequest,
	berth.ENOTFOUND:        http.StatusNotFound,
	berth.ECONFLICT:        http.StatusConflict,
	berth.EUNAUTHENTICATED: http.StatusUnauthorized,
	berth.EFORBIDDEN:       http.StatusForbidden,
	berth.ESOLDOUT:         http.StatusConflict,
	berth.EPAYMENTDECLINED: http.StatusPaymentRequired,
	berth.ERATELIMITED:     http.StatusTooManyRequests,
	berth.ETIMEOUT:         http.StatusGatewayTimeout,
	berth.EUNAVAILABLE:     http.StatusServiceUnavailable,
	berth.EINTERNAL:        http.StatusInternalServerError,
}

// WriteError writes err as a REST JSON error with the status for its code.
func WriteError(w http.ResponseWriter, err error) {
	code := berth.ErrorCode(err)
	status, ok := codes[code]
	if !ok {
		status = http.StatusInternalServerError
	}
	writeJSON(w, status, restError(code, berth.ErrorMessage(err)))
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}
