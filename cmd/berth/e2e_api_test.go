package main

import (
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth/notify"
)

// webhookReceiver is a hand-written fake receiver that checks signatures.
type webhookReceiver struct {
	mu     sync.Mutex
	secret string
	got    []notify.Payload
	bad    int
}

func (r *webhookReceiver) ServeHTTP(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(req.Body)
	r.mu.Lock()
	defer r.mu.Unlock()
	if err := notify.Verify(r.secret, req.Header.Get(notify.SignatureHeader), body, time.Now(), time.Minute); err != nil {
		r.bad++
		http.Error(w, err.Error(), http.StatusUnauthorized)
		return
	}
	var p notify.Payload
	_ = json.Unmarshal(body, &p)
	r.got = append(r.got, p)
}

func (r *webhookReceiver) statuses(bookingID string) map[string]string {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := map[string]string{}
	for _, p := range r.got {
		if p.Subject != bookingID {
			continue
		}
		var d struct {
			Booking struct{ Status string }
		}
		_ = json.Unmarshal(p.Detail, &d)
		out[p.Type] = d.Booking.Status
	}
	return out
}

func TestWebhooksSignInAPIKeysMetrics(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir())
	admin := s.token("admin")

	// Sign in with a demo user's password instead of the CLI.
	var auth struct {
		AccessToken string
		Username    string
		Groups      []string
	}
	s.must(s.gql("", `mutation { signIn(username: "alice", password: "alice-password") { accessToken tokenType expiresIn username groups } }`, nil), "signIn", &auth)
	if auth.AccessToken == "" || auth.Username != "alice" {
		t.Fatalf("signIn: %+v", auth)
	}
	if r := s.gql("", `mutation { signIn(username: "alice", password: "wrong-password") { accessToken } }`, nil); r.code() != "UNAUTHENTICATED" {
		t.Fatalf("wrong password: %+v", r.Errors)
	}
	alice := auth.AccessToken

	// A webhook receives BookingConfirmed (status confirmed) and, for a
	// failed booking, BookingFailed (status cancelled), signed.
	rcv := &webhookReceiver{}
	srv := httptest.NewServer(rcv)
	defer srv.Close()
	var hook struct{ ID, Secret string }
	s.must(s.gql(admin, `mutation($u: String!) { registerWebhook(url: $u, eventTypes: ["BookingConfirmed", "BookingFailed"]) { id secret } }`,
		map[string]any{"u": srv.URL}), "registerWebhook", &hook)
	rcv.mu.Lock()
	rcv.secret = hook.Secret
	rcv.mu.Unlock()
	if r := s.gql(alice, `mutation($u: String!) { registerWebhook(url: $u) { id } }`, map[string]any{"u": srv.URL}); r.code() != "FORBIDDEN" {
		t.Fatalf("customer registerWebhook: %+v", r.Errors)
	}

	f := s.flights(alice)[1830]
	ok := s.waitBooking(alice, s.book(alice, f.ID, s.charge(alice, 10000, "tok_visa")).ID)
	failed := s.waitBooking(alice, s.book(alice, f.ID, s.charge(alice, 10000, "tok_capture_fail")).ID)
	eventually(t, "webhook deliveries", func() bool {
		return rcv.statuses(ok.ID)["BookingConfirmed"] == "confirmed" && rcv.statuses(failed.ID)["BookingFailed"] == "cancelled"
	})
	if got := rcv.statuses(failed.ID); got["BookingConfirmed"] != "" {
		t.Fatalf("a failed booking was announced as confirmed: %v", got)
	}
	rcv.mu.Lock()
	if rcv.bad != 0 {
		t.Fatalf("%d deliveries with a bad signature", rcv.bad)
	}
	rcv.mu.Unlock()

	// API keys read flights, and nothing else.
	key := strings.TrimSpace(cli(t, "apikey", "create", "--name", "website", "--data", s.data))
	apiReq := func(query string) *gqlResponse {
		return s.gql("", query, nil, "x-api-key", key)
	}
	var conn struct{ Items []flight }
	s.must(apiReq(`{ listFlights { items { `+flightFields+` } } }`), "listFlights", &conn)
	if len(conn.Items) != 4 {
		t.Fatalf("API key lists %d flights", len(conn.Items))
	}
	if r := apiReq(`{ listBookings { items { id } } }`); r.code() != "FORBIDDEN" {
		t.Fatalf("API key listBookings: %+v", r.Errors)
	}
	if r := s.gql("", `{ listFlights { items { id } } }`, nil, "x-api-key", key+"x"); r.code() != "UNAUTHENTICATED" || r.Status != 401 {
		t.Fatalf("bad API key: %d %+v", r.Status, r.Errors)
	}

	// Metrics carry the original names.
	resp, err := http.Get(s.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{
		`berth_successful_booking_total{operation="processBooking",service="booking"} 1`,
		`berth_failed_payment_total{operation="processBooking",service="booking"} 1`,
		`berth_cold_start_total{operation="serve",service="booking"} 1`,
		`berth_successful_notification_total{operation="webhook",service="notification"}`,
		`berth_saga_step_duration_seconds_bucket`,
		`berth_http_request_duration_seconds_bucket`,
	} {
		if !strings.Contains(string(body), want) {
			t.Errorf("/metrics lacks %s", want)
		}
	}
	for _, path := range []string{"/healthz", "/readyz", "/.well-known/jwks.json"} {
		resp, err := http.Get(s.url + path)
		if err != nil || resp.StatusCode != 200 {
			t.Fatalf("GET %s: %v %v", path, resp.StatusCode, err)
		}
		resp.Body.Close()
	}
	resp, _ = http.Get(s.url + "/nope")
	if resp.StatusCode != 404 || resp.Header.Get("Content-Type") != "application/json" {
		t.Fatalf("unknown route: %d %s", resp.StatusCode, resp.Header.Get("Content-Type"))
	}
	resp.Body.Close()
}
