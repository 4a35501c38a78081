package httpapi_test

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"regexp"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/httpapi"
)

// TestOversizedRequests: bodies over 1 MiB are refused with 413 and a
// code, whether they announce their length or not; nothing is written.
func TestOversizedRequests(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, httpapi.RateLimit{})
	admin := "Bearer " + s.token("admin-sub", berth.GroupAdmin)
	big := append(append([]byte(`{"query": "mutation { createCharge(amount: 1, currency: \"EUR\", token: \"tok_visa\") { id } }", "variables": {"pad": "`),
		bytes.Repeat([]byte("x"), 1<<20)...), `"}}`...)
	before := s.writes()
	for _, c := range []struct {
		name    string
		path    string
		chunked bool
		gql     bool
	}{
		{"GraphQL with Content-Length", "/graphql", false, true},
		{"GraphQL chunked", "/graphql", true, true},
		{"another route with Content-Length", "/healthz", false, false},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			var body io.Reader = bytes.NewReader(big)
			if c.chunked {
				body = io.MultiReader(bytes.NewReader(big)) // no length: sent chunked
			}
			req, _ := http.NewRequest(http.MethodPost, s.srv.URL+c.path, body)
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("Authorization", admin)
			r := s.do(req)
			if r.status != http.StatusRequestEntityTooLarge || r.code() != "INVALID" {
				t.Fatalf("%d %.300s", r.status, r.body)
			}
			if c.gql != (len(r.Errors) > 0) {
				t.Fatalf("the error's shape: %.300s", r.body)
			}
			if len(r.body) > 4096 {
				t.Fatalf("the body is echoed: %d bytes", len(r.body))
			}
		})
	}
	s.t = t
	if n := s.writes(); n != before {
		t.Fatalf("%d rows written", n-before)
	}
	// A URL beyond the server's header limit (1 MiB) is refused by
	// net/http itself, before berth: a 4xx in plain text.
	resp, err := s.srv.Client().Get(s.srv.URL + "/graphql?query=" + strings.Repeat("a", 1<<20+1))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode < 400 || resp.StatusCode >= 500 {
		t.Fatalf("a 1 MiB URL: %d", resp.StatusCode)
	}
}

// TestMetricsMethodLabel: the method label of the request metrics takes
// a bounded set of values, whatever methods clients make up.
func TestMetricsMethodLabel(t *testing.T) {
	t.Parallel()
	s := newAPIStack(t, httpapi.RateLimit{})
	for i := range 50 {
		req, _ := http.NewRequest(fmt.Sprintf("X-MADE-UP-%d", i), s.srv.URL+"/graphql", nil)
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
	}
	resp, err := s.srv.Client().Get(s.srv.URL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	methods := map[string]bool{}
	for _, m := range regexp.MustCompile(`berth_http_request_duration_seconds_count\{[^}]*method="([^"]*)"`).FindAllStringSubmatch(string(b), -1) {
		methods[m[1]] = true
	}
	if !methods["OTHER"] || len(methods) > 3 || strings.Contains(string(b), "MADE-UP") {
		t.Fatalf("method labels %v", methods)
	}
}

// TestRateLimits: the limits through the whole handler. Per address, they
// act before authentication (so floods of bad tokens cost no signature
// checks); per identity, on the verified caller.
func TestRateLimits(t *testing.T) {
	t.Parallel()
	t.Run("per address", func(t *testing.T) {
		t.Parallel()
		s := newAPIStack(t, httpapi.RateLimit{PerIP: 0.01, Burst: 3})
		alice := "Bearer " + s.token("alice")
		for i := range 3 {
			if r := s.gql(`{ me { sub } }`, nil, "Authorization", alice); r.status != 200 {
				t.Fatalf("request %d: %d %s", i+1, r.status, r.body)
			}
		}
		for _, h := range [][]string{{"Authorization", alice}, {"Authorization", "Bearer forged"}, {"X-Api-Key", "bk_x"}, nil} {
			r := s.gql(`{ me { sub } }`, nil, h...)
			if r.status != http.StatusTooManyRequests || r.code() != "RATE_LIMITED" || r.header.Get("Retry-After") != "100" {
				t.Fatalf("%v over the limit: %d Retry-After %q %s", h, r.status, r.header.Get("Retry-After"), r.body)
			}
		}
		req, _ := http.NewRequest(http.MethodGet, s.srv.URL+"/metrics", nil)
		if r := s.do(req); r.status != 429 || r.code() != "RATE_LIMITED" || r.Error == nil {
			t.Fatalf("REST route over the limit: %d %s", r.status, r.body)
		}
		for _, p := range []string{"/healthz", "/readyz"} {
			req, _ := http.NewRequest(http.MethodGet, s.srv.URL+p, nil)
			if r := s.do(req); r.status != 200 {
				t.Fatalf("%s: %d", p, r.status)
			}
		}
	})
	t.Run("per identity", func(t *testing.T) {
		t.Parallel()
		s := newAPIStack(t, httpapi.RateLimit{PerIdentity: 0.01, Burst: 2})
		alice, bob := "Bearer "+s.token("alice"), "Bearer "+s.token("bob")
		for range 2 {
			if r := s.gql(`{ me { sub } }`, nil, "Authorization", alice); r.status != 200 {
				t.Fatalf("alice: %d", r.status)
			}
		}
		if r := s.gql(`{ me { sub } }`, nil, "Authorization", alice); r.status != 429 || r.code() != "RATE_LIMITED" {
			t.Fatalf("alice over her limit: %d %s", r.status, r.body)
		}
		// A new token of the same subject shares the bucket.
		if r := s.gql(`{ me { sub } }`, nil, "Authorization", "Bearer "+s.token("alice")); r.status != 429 {
			t.Fatalf("alice with a new token: %d", r.status)
		}
		if r := s.gql(`{ me { sub } }`, nil, "Authorization", bob); r.status != 200 {
			t.Fatalf("bob: %d", r.status)
		}
		key := s.apiKey(nil)
		for i := range 2 {
			if r := s.gql(`{ listFlights { items { id } } }`, nil, "X-Api-Key", key); r.status != 200 {
				t.Fatalf("API key request %d: %d", i+1, r.status)
			}
		}
		if r := s.gql(`{ listFlights { items { id } } }`, nil, "X-Api-Key", key); r.status != 429 {
			t.Fatalf("API key over its limit: %d", r.status)
		}
		for range 5 { // anonymous callers are limited per address only
			if r := s.gql(`{ me { sub } }`, nil); r.status != 200 {
				t.Fatalf("anonymous: %d", r.status)
			}
		}
	})
}
