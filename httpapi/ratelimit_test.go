package httpapi

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

// fakeClock is a settable clock for the limiter.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func newFakeClock() *fakeClock { return &fakeClock{t: time.Date(2027, 1, 1, 0, 0, 0, 0, time.UTC)} }

func (c *fakeClock) Now() time.Time { c.mu.Lock(); defer c.mu.Unlock(); return c.t }

func (c *fakeClock) advance(d time.Duration) { c.mu.Lock(); c.t = c.t.Add(d); c.mu.Unlock() }

func TestLimiterTokenBucket(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(10, 5, 0, clock.Now) // 10/s, burst 5
	for i := range 5 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("request %d of the burst refused", i+1)
		}
	}
	ok, wait := l.allow("a")
	if ok || wait != 100*time.Millisecond {
		t.Fatalf("past the burst: ok %v, wait %s; want a refusal and 100ms", ok, wait)
	}
	// Another key has its own bucket.
	if ok, _ := l.allow("b"); !ok {
		t.Fatal("another key was refused")
	}
	// Tokens come back at the rate, never beyond the burst.
	clock.advance(250 * time.Millisecond) // 2.5 tokens
	for i := range 2 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("refill: request %d refused", i+1)
		}
	}
	if ok, wait := l.allow("a"); ok || wait != 50*time.Millisecond {
		t.Fatalf("after 2.5 tokens: ok %v, wait %s; want a refusal and 50ms", ok, wait)
	}
	clock.advance(time.Hour)
	for i := range 5 {
		if ok, _ := l.allow("a"); !ok {
			t.Fatalf("after an hour: request %d refused", i+1)
		}
	}
	if ok, _ := l.allow("a"); ok {
		t.Fatal("an idle hour filled the bucket beyond its burst")
	}
	// A clock that goes back refills nothing and breaks nothing.
	clock.advance(-time.Minute)
	if ok, wait := l.allow("a"); ok || wait <= 0 {
		t.Fatalf("clock went back: ok %v wait %s", ok, wait)
	}
}

func TestLimiterDefaultsAndOff(t *testing.T) {
	clock := newFakeClock()
	for _, rate := range []float64{0, -1} {
		if l := newLimiter(rate, 10, 0, clock.Now); l != nil {
			t.Fatalf("rate %v: a limiter, want none (off)", rate)
		}
	}
	l := newLimiter(2.5, 0, 0, clock.Now) // burst 0: twice the rate, rounded up
	if l.burst != 5 || l.maxKeys != DefaultRateLimitKeys {
		t.Fatalf("defaults: burst %v maxKeys %d", l.burst, l.maxKeys)
	}
	if l := newLimiter(0.1, 0, 0, clock.Now); l.burst != 1 {
		t.Fatalf("a slow rate's burst is %v, want 1", l.burst)
	}
	for _, c := range []RateLimit{{PerIP: -1}, {PerIdentity: -0.5}, {Burst: -1}} {
		if err := c.Validate(); berth.ErrorCode(err) != berth.EINVALID {
			t.Errorf("%+v: %v, want INVALID", c, err)
		}
	}
	if err := (RateLimit{PerIP: 100, PerIdentity: 50, Burst: 20}).Validate(); err != nil {
		t.Fatal(err)
	}
}

// TestLimiterMemoryIsBounded: idle buckets are dropped, and no more than
// MaxKeys are ever kept, whatever the number of distinct keys.
func TestLimiterMemoryIsBounded(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(10, 10, 1000, clock.Now) // an idle bucket is full after 1s
	for i := range 500 {
		l.allow(fmt.Sprint("k", i))
	}
	if n := l.size(); n != 500 {
		t.Fatalf("%d buckets, want 500", n)
	}
	clock.advance(2 * time.Second)
	l.allow("fresh")
	if n := l.size(); n != 1 {
		t.Fatalf("%d buckets after the others went idle, want 1", n)
	}
	// A flood of distinct keys within one refill period stays at the bound.
	for i := range 10_000 {
		l.allow(fmt.Sprint("flood", i))
		if i%1000 == 0 {
			clock.advance(time.Millisecond)
		}
	}
	if n := l.size(); n > 1000 {
		t.Fatalf("%d buckets, bound 1000", n)
	}
}

func TestLimiterConcurrent(t *testing.T) {
	clock := newFakeClock()
	l := newLimiter(1, 100, 0, clock.Now)
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed := 0
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for range 50 {
				if ok, _ := l.allow("shared"); ok {
					mu.Lock()
					allowed++
					mu.Unlock()
				}
			}
		}()
	}
	wg.Wait()
	if allowed != 100 {
		t.Fatalf("%d of 400 concurrent requests allowed, want exactly the burst (100)", allowed)
	}
}

func TestClientKey(t *testing.T) {
	for _, c := range []struct {
		remote, header, value, want string
	}{
		{"192.0.2.7:5555", "", "", "192.0.2.7"},
		{"192.0.2.7:5555", "", "", "192.0.2.7"},
		{"[2001:db8:1:2:3:4:5:6]:443", "", "", "2001:db8:1:2::/64"},
		{"[2001:db8:1:2:ffff::1]:443", "", "", "2001:db8:1:2::/64"},
		{"[::ffff:192.0.2.9]:80", "", "", "192.0.2.9"},
		// Behind a proxy: the last address, the one the proxy appended.
		{"10.0.0.1:80", "X-Forwarded-For", "203.0.113.1, 198.51.100.2", "198.51.100.2"},
		{"10.0.0.1:80", "X-Real-IP", "198.51.100.3", "198.51.100.3"},
		{"10.0.0.1:80", "X-Forwarded-For", "[2001:db8::1]:1234", "2001:db8::/64"},
		// A header that holds no address: the connection's.
		{"10.0.0.1:80", "X-Forwarded-For", "unknown", "10.0.0.1"},
		{"10.0.0.1:80", "X-Forwarded-For", "", "10.0.0.1"},
		{"not an address", "", "", "not an address"},
	} {
		r := httptest.NewRequest(http.MethodGet, "/graphql", nil)
		r.RemoteAddr = c.remote
		if c.value != "" {
			r.Header.Set(c.header, c.value)
		}
		if got := clientKey(r, c.header); got != c.want {
			t.Errorf("%s %s=%q: %q, want %q", c.remote, c.header, c.value, got, c.want)
		}
	}
	// With several header lines, the last one counts.
	r := httptest.NewRequest(http.MethodGet, "/", nil)
	r.Header.Add("X-Forwarded-For", "203.0.113.9")
	r.Header.Add("X-Forwarded-For", "198.51.100.4")
	if got := clientKey(r, "X-Forwarded-For"); got != "198.51.100.4" {
		t.Errorf("two header lines: %q", got)
	}
}

// TestRateLimitMiddleware: 429 with Retry-After and RATE_LIMITED in the
// shape of the route; probes are never limited; identities have their own
// buckets.
func TestRateLimitMiddleware(t *testing.T) {
	clock := newFakeClock()
	ok := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusOK) })
	byIP := limitByIP(newLimiter(1, 2, 0, clock.Now), "", ok)
	send := func(h http.Handler, path string, actor *berth.Actor, remote string) *httptest.ResponseRecorder {
		r := httptest.NewRequest(http.MethodPost, path, strings.NewReader("{}"))
		r.RemoteAddr = remote
		if actor != nil {
			r = r.WithContext(berth.NewContextWithActor(r.Context(), actor))
		}
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		return w
	}
	for i := range 2 {
		if w := send(byIP, "/graphql", nil, "192.0.2.1:1"); w.Code != 200 {
			t.Fatalf("request %d: %d", i+1, w.Code)
		}
	}
	w := send(byIP, "/graphql", nil, "192.0.2.1:2") // another port, the same client
	if w.Code != http.StatusTooManyRequests || w.Header().Get("Retry-After") != "1" {
		t.Fatalf("over the limit: %d Retry-After %q", w.Code, w.Header().Get("Retry-After"))
	}
	var gql struct {
		Errors []struct {
			Message    string
			Extensions map[string]string
		}
	}
	if err := json.Unmarshal(w.Body.Bytes(), &gql); err != nil || len(gql.Errors) != 1 || gql.Errors[0].Extensions["code"] != "RATE_LIMITED" {
		t.Fatalf("GraphQL body: %s", w.Body)
	}
	w = send(byIP, "/metrics", nil, "192.0.2.1:3")
	var rest struct {
		Error struct{ Code, Message string }
	}
	if err := json.Unmarshal(w.Body.Bytes(), &rest); err != nil || w.Code != 429 || rest.Error.Code != "RATE_LIMITED" {
		t.Fatalf("REST body: %d %s", w.Code, w.Body)
	}
	for _, p := range []string{"/healthz", "/readyz"} {
		if w := send(byIP, p, nil, "192.0.2.1:4"); w.Code != 200 {
			t.Fatalf("%s was limited: %d", p, w.Code)
		}
	}
	if w := send(byIP, "/graphql", nil, "192.0.2.2:1"); w.Code != 200 {
		t.Fatalf("another address was limited: %d", w.Code)
	}
	clock.advance(time.Second)
	if w := send(byIP, "/graphql", nil, "192.0.2.1:1"); w.Code != 200 {
		t.Fatalf("a second later: %d", w.Code)
	}

	// Per identity: a slow rate gives a long Retry-After; anonymous
	// requests are not limited by it; an API key and a user with the same
	// subject text have separate buckets.
	byID := limitByIdentity(newLimiter(0.1, 1, 0, clock.Now), ok)
	alice := &berth.Actor{Kind: berth.ActorUser, Subject: "alice"}
	if w := send(byID, "/graphql", alice, "192.0.2.1:1"); w.Code != 200 {
		t.Fatalf("alice's first request: %d", w.Code)
	}
	w = send(byID, "/graphql", alice, "192.0.2.99:1")
	if w.Code != 429 || w.Header().Get("Retry-After") != "10" {
		t.Fatalf("alice from another address: %d Retry-After %q, want 429 and 10", w.Code, w.Header().Get("Retry-After"))
	}
	if w := send(byID, "/graphql", &berth.Actor{Kind: berth.ActorAPIKey, Subject: "alice"}, "192.0.2.1:1"); w.Code != 200 {
		t.Fatalf("an API key was limited by a user's bucket: %d", w.Code)
	}
	for range 3 {
		if w := send(byID, "/graphql", nil, "192.0.2.1:1"); w.Code != 200 {
			t.Fatalf("anonymous: %d", w.Code)
		}
	}
	// Off: the handler itself.
	if h := limitByIP(nil, "", ok); fmt.Sprintf("%p", h) != fmt.Sprintf("%p", ok) {
		t.Fatal("a nil limiter wraps the handler")
	}
}

func TestMetricMethod(t *testing.T) {
	for in, want := range map[string]string{"GET": "GET", "POST": "POST", "DELETE": "DELETE", "get": "OTHER", "FOO": "OTHER", "": "OTHER"} {
		if got := metricMethod(in); got != want {
			t.Errorf("%q: %q, want %q", in, got, want)
		}
	}
}
