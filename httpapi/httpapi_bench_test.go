package httpapi_test

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/auth"
	"github.com/berthhq/berth/httpapi"
	"github.com/berthhq/berth/metrics"
	"github.com/berthhq/berth/store"
)

// BenchmarkStack is what httpapi adds to every request, in process: request
// id, body limit, bearer-token verification (the same token every time, as a
// client polling sends it), metrics and the access log at INFO, in front of
// a GraphQL handler that only answers {"data":{}}.
func BenchmarkStack(b *testing.B) {
	for _, tt := range []struct {
		name  string
		token bool
	}{{"anonymous", false}, {"bearer", true}} {
		b.Run(tt.name, func(b *testing.B) {
			ctx := context.Background()
			dir := b.TempDir()
			quiet := slog.New(httpapi.LogHandler(slog.NewJSONHandler(discard{}, &slog.HandlerOptions{Level: slog.LevelInfo})))
			db, err := store.Open(ctx, store.Config{URL: "sqlite:" + filepath.Join(dir, "berth.db"), Logger: quiet})
			if err != nil {
				b.Fatal(err)
			}
			b.Cleanup(func() { db.Close() })
			issuer, err := auth.LoadOrCreateIssuer(dir, "berth", "berth")
			if err != nil {
				b.Fatal(err)
			}
			verifier, err := auth.NewVerifier(ctx, issuer, nil)
			if err != nil {
				b.Fatal(err)
			}
			gql := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Content-Type", "application/json")
				_, _ = w.Write([]byte(`{"data":{}}`))
			})
			h := httpapi.New(httpapi.Config{Store: db, Verifier: verifier, Issuer: issuer, GraphQL: gql, Metrics: metrics.New(db),
				Logger: quiet, Clock: berth.SystemClock{}})
			tok, err := issuer.Mint("bench-customer", "bench", []string{berth.GroupCustomer}, time.Hour)
			if err != nil {
				b.Fatal(err)
			}
			const body = `{"query":"query($id: ID!) { getBooking(id: $id) { status } }","variables":{"id":"x"}}`
			b.ReportAllocs()
			b.ResetTimer()
			for range b.N {
				req := httptest.NewRequest(http.MethodPost, "/graphql", strings.NewReader(body))
				req.Header.Set("Content-Type", "application/json")
				if tt.token {
					req.Header.Set("Authorization", "Bearer "+tok)
				}
				w := httptest.NewRecorder()
				h.ServeHTTP(w, req)
				if w.Code != http.StatusOK {
					b.Fatalf("%d %s", w.Code, w.Body)
				}
			}
		})
	}
}

type discard struct{}

func (discard) Write(p []byte) (int, error) { return len(p), nil }
