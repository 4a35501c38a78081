package main

import (
	"net/http"
	"strings"
	"testing"
)

// TestRateLimitE2E: berth serve with a low per-identity limit, set from the
// environment (BERTH_RATE_LIMIT_IDENTITY) and a flag (--rate-burst),
// answers 429 with Retry-After and RATE_LIMITED once a caller's burst is
// spent, and only to that caller. Not parallel: the environment is the
// test process's, inherited by the server.
func TestRateLimitE2E(t *testing.T) {
	t.Setenv("BERTH_RATE_LIMIT_IDENTITY", "0.5")
	s := startServer(t, t.TempDir(), "--rate-burst", "4")
	alice, bob := s.token("alice"), s.token("bob")
	for i := range 4 {
		if r := s.gql(alice, `{ me { sub } }`, nil); r.Status != 200 || len(r.Errors) > 0 {
			t.Fatalf("request %d of the burst: %d %+v", i+1, r.Status, r.Errors)
		}
	}
	body := `{"query": "{ me { sub } }"}`
	req, _ := http.NewRequest(http.MethodPost, s.url+"/graphql", strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+alice)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if ra := resp.Header.Get("Retry-After"); resp.StatusCode != http.StatusTooManyRequests || (ra != "1" && ra != "2") {
		t.Fatalf("past the burst: %d Retry-After %q", resp.StatusCode, resp.Header.Get("Retry-After"))
	}
	if r := s.gql(alice, `{ me { sub } }`, nil); r.Status != 429 || r.code() != "RATE_LIMITED" {
		t.Fatalf("past the burst: %d %+v", r.Status, r.Errors)
	}
	if r := s.gql(bob, `{ me { sub } }`, nil); r.Status != 200 {
		t.Fatalf("bob was limited by alice's bucket: %d", r.Status)
	}
	resp, err = http.Get(s.url + "/healthz")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 200 {
		t.Fatalf("/healthz: %d", resp.StatusCode)
	}
}
