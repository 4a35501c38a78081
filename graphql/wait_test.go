package graphql

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/berthhq/berth"
)

const waitQuery = `query($id: ID!, $w: [BookingStatus!], $t: Int) { getBooking(id: $id, waitFor: $w, timeoutMs: $t) { id status bookingReference } }`

// waitVars are getBooking's variables: the booking, the statuses to wait
// for and the timeout (nil: left out).
func waitVars(id string, timeoutMs any, waitFor ...string) map[string]any {
	v := map[string]any{"id": id, "w": waitFor}
	if timeoutMs != nil {
		v["t"] = timeoutMs
	}
	return v
}

// unconfirmed returns an UNCONFIRMED booking of alice's that nothing will
// change: Admin's createBooking starts no saga.
func (s *stack) unconfirmed() booking {
	s.t.Helper()
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	b := must[booking](s, s.gql(asAdmin, `mutation($in: CreateBookingInput!) { createBooking(input: $in) { `+bookingFields+` } }`,
		map[string]any{"in": map[string]any{"bookingOutboundFlightId": f.ID, "paymentToken": "x", "status": "UNCONFIRMED", "customer": "alice"}}),
		"createBooking")
	if b.Status != "UNCONFIRMED" {
		s.t.Fatalf("createBooking: %+v", b)
	}
	return b
}

// countViews counts the store's read-only transactions from now on, and
// closes the returned channel at the second one: a waiting getBooking has
// read the booking again.
func (s *stack) countViews() (*atomic.Int64, <-chan struct{}) {
	var n atomic.Int64
	waiting := make(chan struct{})
	h := func() error {
		if n.Add(1) == 2 {
			close(waiting)
		}
		return nil
	}
	s.store.onView.Store(&h)
	return &n, waiting
}

// serve is gql for another goroutine: it reports problems as an error
// instead of failing the test, and sends the request with ctx.
func (s *stack) serve(ctx context.Context, actor, query string, vars map[string]any) (*response, error) {
	body, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req := httptest.NewRequestWithContext(ctx, http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Actor", actor)
	rec := httptest.NewRecorder()
	s.h.ServeHTTP(rec, req)
	r := &response{Status: rec.Code, raw: rec.Body.String()}
	if err := json.Unmarshal(rec.Body.Bytes(), r); err != nil {
		return nil, fmt.Errorf("status %d, body is not JSON: %v: %s", rec.Code, err, rec.Body)
	}
	return r, nil
}

type served struct {
	r   *response
	err error
}

// goServe runs serve in a goroutine; its answer arrives on the channel.
func (s *stack) goServe(ctx context.Context, actor, query string, vars map[string]any) <-chan served {
	c := make(chan served, 1)
	go func() {
		r, err := s.serve(ctx, actor, query, vars)
		c <- served{r, err}
	}()
	return c
}

// await returns the answer of goServe, failing the test if there is none
// long before any wait could end (a safety net, not a measurement).
func await(t *testing.T, c <-chan served, what string) *response {
	t.Helper()
	select {
	case a := <-c:
		if a.err != nil {
			t.Fatalf("%s: %v", what, a.err)
		}
		return a.r
	case <-time.After(2 * time.Minute):
		t.Fatalf("%s: no answer", what)
	}
	return nil
}

// getBooking with waitFor answers once the booking reaches a status
// waited for, in the same request.
func TestGetBookingWaitsForStatus(t *testing.T) {
	t.Parallel()
	s := setup(t)
	b := s.unconfirmed()
	_, waiting := s.countViews()
	answer := s.goServe(context.Background(), asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED", "CANCELLED"))
	select {
	case <-waiting:
	case a := <-answer:
		t.Fatalf("answered before the booking changed: %+v", a)
	}
	must[booking](s, s.gql(asAdmin, `mutation($id: ID!) { updateBooking(input: {id: $id, status: CONFIRMED}) { id } }`,
		map[string]any{"id": b.ID}), "updateBooking")
	got := must[booking](s, await(t, answer, "getBooking(waitFor)"), "getBooking")
	if got.ID != b.ID || got.Status != "CONFIRMED" || got.BookingReference == nil {
		t.Fatalf("getBooking(waitFor: [CONFIRMED, CANCELLED]) = %+v", got)
	}

	// A status already reached is answered with one read, and so is a
	// request without waitFor (or with an empty one) or timeoutMs 0.
	for _, v := range []map[string]any{
		waitVars(b.ID, nil, "CONFIRMED"),
		waitVars(b.ID, 25000),
		{"id": b.ID},
		waitVars(b.ID, 0, "CANCELLED"),
	} {
		views, _ := s.countViews()
		got := must[booking](s, s.gql(asAlice, waitQuery, v), "getBooking")
		if got.Status != "CONFIRMED" || views.Load() != 1 {
			t.Fatalf("getBooking(%v) = %+v after %d reads, want CONFIRMED after 1", v, got, views.Load())
		}
	}
	s.noInternalErrors()
}

// At the timeout, getBooking answers with the booking as it is, without
// an error.
func TestGetBookingWaitTimeout(t *testing.T) {
	t.Parallel()
	s := setup(t)
	b := s.unconfirmed()
	views, _ := s.countViews()
	got := must[booking](s, s.gql(asAlice, waitQuery, waitVars(b.ID, 30, "CONFIRMED")), "getBooking")
	if got.Status != "UNCONFIRMED" || got.BookingReference != nil {
		t.Fatalf("getBooking after its timeout = %+v", got)
	}
	if views.Load() < 2 {
		t.Fatalf("getBooking read the booking %d times: it did not wait", views.Load())
	}
	// Admin waits like the owner.
	got = must[booking](s, s.gql(asAdmin, waitQuery, waitVars(b.ID, 30, "CONFIRMED")), "getBooking")
	if got.Status != "UNCONFIRMED" {
		t.Fatalf("Admin's getBooking after its timeout = %+v", got)
	}
	s.noInternalErrors()
}

// Whoever may not read the booking gets NOT_FOUND before any wait, as for
// a missing booking: the answer does not tell that it exists.
func TestGetBookingWaitAuthorization(t *testing.T) {
	t.Parallel()
	s := setup(t)
	b := s.unconfirmed()
	for _, c := range []struct {
		actor, id, code string
	}{
		{asBob, b.ID, "NOT_FOUND"},
		{asBob, "0190f3c4-0000-7000-8000-00000000dead", "NOT_FOUND"},
		{asAlice, "0190f3c4-0000-7000-8000-00000000dead", "NOT_FOUND"},
		{asAnonymous, b.ID, "UNAUTHENTICATED"},
		{asAPIKey, b.ID, "FORBIDDEN"},
	} {
		views, _ := s.countViews()
		r := s.gql(c.actor, waitQuery, waitVars(c.id, 25000, "CONFIRMED"))
		if s.wantError(r, http.StatusOK, c.code); string(r.Data["getBooking"]) != "null" {
			t.Fatalf("getBooking(%s) as %q: %s", c.id, c.actor, r.raw)
		}
		if views.Load() > 1 {
			t.Fatalf("getBooking(%s) as %q read the booking %d times: it waited", c.id, c.actor, views.Load())
		}
	}
	s.noInternalErrors()
}

func TestGetBookingWaitInvalid(t *testing.T) {
	t.Parallel()
	s := setup(t)
	b := s.unconfirmed()
	for _, c := range []struct {
		vars   map[string]any
		status int
	}{
		{waitVars(b.ID, -1, "CONFIRMED"), http.StatusOK},
		{waitVars(b.ID, -1), http.StatusOK},
		{waitVars(b.ID, 100, "DONE"), http.StatusBadRequest},
		{waitVars(b.ID, "soon", "CONFIRMED"), http.StatusBadRequest},
	} {
		s.wantError(s.gql(asAlice, waitQuery, c.vars), c.status, "INVALID")
	}
	s.noInternalErrors()
}

func TestWaitTimeout(t *testing.T) {
	t.Parallel()
	ms := func(n int) *int { return &n }
	for _, c := range []struct {
		in   *int
		want time.Duration
		code string
	}{
		{nil, DefaultWait, ""},
		{ms(0), 0, ""},
		{ms(1500), 1500 * time.Millisecond, ""},
		{ms(25000), MaxWait, ""},
		{ms(25001), MaxWait, ""},
		{ms(1 << 30), MaxWait, ""},
		{ms(-1), 0, berth.EINVALID},
	} {
		got, err := waitTimeout(c.in)
		if got != c.want || berth.ErrorCode(err) != c.code && !(err == nil && c.code == "") {
			t.Errorf("waitTimeout(%v) = %v, %v; want %v, %s", c.in, got, err, c.want, c.code)
		}
	}
}

// A waiting getBooking ends when its client goes away.
func TestGetBookingWaitCancelled(t *testing.T) {
	t.Parallel()
	s := setup(t)
	b := s.unconfirmed()
	_, waiting := s.countViews()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	answer := s.goServe(ctx, asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED"))
	<-waiting
	cancel()
	select {
	case a := <-answer:
		if a.err != nil {
			t.Fatal(a.err)
		}
	case <-time.After(MaxWait / 2):
		t.Fatal("getBooking kept waiting after its client went away")
	}
}

// Over MaxWaiters, getBooking answers at once with the current status.
func TestGetBookingWaitersBounded(t *testing.T) {
	t.Parallel()
	s := setup(t, func(c *Config) { c.MaxWaiters = 1 })
	b := s.unconfirmed()
	_, waiting := s.countViews()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	first := s.goServe(ctx, asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED"))
	<-waiting
	// The first request holds the only place; the second, with the same
	// timeout, answers while the first still waits: it did not wait.
	got := must[booking](s, s.gql(asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED")), "getBooking")
	if got.Status != "UNCONFIRMED" {
		t.Fatalf("getBooking over MaxWaiters = %+v", got)
	}
	select {
	case a := <-first:
		t.Fatalf("the first waiter answered before the second: %+v", a)
	default:
	}
	cancel()
	await(t, first, "first waiter")
	// Its place is free again: a wait succeeds.
	_, waiting = s.countViews()
	answer := s.goServe(context.Background(), asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED"))
	<-waiting
	must[booking](s, s.gql(asAdmin, `mutation($id: ID!) { updateBooking(input: {id: $id, status: CONFIRMED}) { id } }`,
		map[string]any{"id": b.ID}), "updateBooking")
	if got := must[booking](s, await(t, answer, "getBooking(waitFor)"), "getBooking"); got.Status != "CONFIRMED" {
		t.Fatalf("getBooking(waitFor) after the place was freed = %+v", got)
	}
}

// When the server drains (shuts down), a waiting getBooking answers at
// once with the booking as it is.
func TestGetBookingWaitDrains(t *testing.T) {
	t.Parallel()
	draining := make(chan struct{})
	s := setup(t, func(c *Config) { c.Draining = draining })
	b := s.unconfirmed()
	_, waiting := s.countViews()
	answer := s.goServe(context.Background(), asAlice, waitQuery, waitVars(b.ID, 25000, "CONFIRMED"))
	<-waiting
	close(draining)
	select {
	case a := <-answer:
		if a.err != nil {
			t.Fatal(a.err)
		}
		if got := must[booking](s, a.r, "getBooking"); got.Status != "UNCONFIRMED" {
			t.Fatalf("getBooking while draining = %+v", got)
		}
	case <-time.After(MaxWait / 2):
		t.Fatal("getBooking kept waiting while the server shut down")
	}
}
