package graphql

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
)

// TestBadRequests: every malformed or abusive request is refused with
// extensions.code and a 2xx/4xx status, never a 5xx or a panic.
func TestBadRequests(t *testing.T) {
	t.Parallel()
	s := setup(t)
	shallow := setup(t, func(c *Config) { c.MaxDepth = 3 })
	huge := append(append([]byte(`{"query": "{ me { sub } }", "variables": {"pad": "`), bytes.Repeat([]byte("x"), MaxBodyBytes)...), `"}}`...)
	gql := func(q string, vars map[string]any) []byte {
		b, _ := json.Marshal(map[string]any{"query": q, "variables": vars})
		return b
	}
	for _, c := range []struct {
		name        string
		stack       *stack
		contentType string
		body        []byte
		status      int
		code        string
		reason      string
		message     string // a substring of the first message
	}{
		{"malformed JSON", s, "application/json", []byte(`{"query": "{ me { sub } }"`), 400, "INVALID", "", "JSON object"},
		{"JSON array", s, "application/json", []byte(`[{"query": "{ me { sub } }"}]`), 400, "INVALID", "", "not an object"},
		{"query not a string", s, "application/json", []byte(`{"query": 5}`), 400, "INVALID", "", "query has the wrong type"},
		{"trailing data", s, "application/json", []byte(`{"query": "{ me { sub } }"} {}`), 400, "INVALID", "", "unexpected data"},
		{"empty body", s, "application/json", nil, 400, "INVALID", "", "empty body"},
		{"no query", s, "application/json", []byte(`{}`), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "no operation"},
		{"not JSON content", s, "text/plain", []byte(`{"query": "{ me { sub } }"}`), 415, "INVALID", "", "application/json"},
		{"too large", s, "application/json", huge, 413, "INVALID", "", "1 MiB"},
		{"parse error", s, "application/json", gql(`{ me { sub }`, nil), 400, "INVALID", "GRAPHQL_PARSE_FAILED", "Expected"},
		{"unknown field", s, "application/json", gql(`{ getFlight(id: "x") { id nope } }`, nil), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "nope"},
		{"unknown argument", s, "application/json", gql(`{ listFlights(first: 3) { items { id } } }`, nil), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "first"},
		{"missing argument", s, "application/json", gql(`{ getFlight { id } }`, nil), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "id"},
		{"int literal overflow", s, "application/json", gql(`{ listFlights(limit: 99999999999999999999) { nextToken } }`, nil), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", ""},
		{"int variable overflow", s, "application/json", gql(`query($l: Int) { listFlights(limit: $l) { nextToken } }`, map[string]any{"l": 1e20}), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", ""},
		{"variable of the wrong type", s, "application/json", gql(`query($l: Int) { listFlights(limit: $l) { nextToken } }`, map[string]any{"l": "many"}),
			400, "INVALID", "GRAPHQL_VALIDATION_FAILED", ""},
		{"missing variable", s, "application/json", gql(`query($id: ID!) { getFlight(id: $id) { id } }`, nil), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", ""},
		{"bad enum", s, "application/json", gql(`{ getFlightBySchedule(departureAirportCode: "LGW", sortDirection: SIDEWAYS) { nextToken } }`, nil),
			400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "SIDEWAYS"},
		{"unknown operation name", s, "application/json", []byte(`{"query": "query A { me { sub } }", "operationName": "B"}`), 400, "INVALID", "GRAPHQL_VALIDATION_FAILED", "B"},
		{"too deep", shallow, "application/json", gql(`{ listBookings { items { outboundFlight { id } } } }`, nil), 400, "INVALID", "DEPTH_LIMIT_EXCEEDED", "limit is 3"},
		{"too deep through fragments", shallow, "application/json",
			gql(`{ listBookings { ...B } } fragment B on ModelBookingConnection { items { ... on Booking { outboundFlight { id } } } }`, nil),
			400, "INVALID", "DEPTH_LIMIT_EXCEEDED", ""},
		{"too complex", s, "application/json", gql(`{ deadLetters(limit: 1000) { items { id history { seq type } } } }`, nil), 400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED", "2000"},
		{"too complex with aliases", s, "application/json", gql(`{ a: listBookings(limit: 1000) { items { outboundFlight { id } } } b: listFlights(limit: 1000) { items { id } } }`, nil),
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED", ""},
		{"invalid nextToken", s, "application/json", gql(`{ listFlights(nextToken: "!!!") { nextToken } }`, nil), 200, "INVALID", "", "nextToken"},
		{"limit 0", s, "application/json", gql(`{ listFlights(limit: 0) { nextToken } }`, nil), 200, "INVALID", "", "limit"},
		{"limit -1", s, "application/json", gql(`{ listBookings(limit: -1) { nextToken } }`, nil), 200, "INVALID", "", "limit"},
		{"limit 5000", s, "application/json", gql(`{ listFlights(limit: 5000) { items { id } } }`, nil), 200, "INVALID", "", "limit"},
		{"filter too deep", s, "application/json", gql(`query($f: ModelFlightFilterInput) { listFlights(filter: $f) { nextToken } }`,
			map[string]any{"f": nested(12)}), 200, "INVALID", "", "nested"},
		{"between with one value", s, "application/json", gql(`{ listFlights(filter: {flightNumber: {between: [1]}}) { nextToken } }`, nil), 200, "INVALID", "", "between"},
		{"between with null", s, "application/json", gql(`{ listFlights(filter: {flightNumber: {between: [1, null]}}) { nextToken } }`, nil), 200, "INVALID", "", "between"},
	} {
		t.Run(c.name, func(t *testing.T) {
			c.stack.t = t
			defer func() { c.stack.t = nil }()
			r := c.stack.post(asAlice, c.contentType, c.body)
			e := c.stack.wantError(r, c.status, c.code)
			if reason, _ := e.Extensions["reason"].(string); reason != c.reason {
				t.Errorf("reason %q, want %q: %s", reason, c.reason, r.raw)
			}
			if !strings.Contains(e.Message, c.message) {
				t.Errorf("message %q does not contain %q", e.Message, c.message)
			}
			if len(r.raw) > 4096 {
				t.Errorf("the response echoes the request: %d bytes", len(r.raw))
			}
		})
	}
	s.t, shallow.t = t, t
	s.wantError(s.gql(asAdmin, `{ deadLetters(limit: 5000) { nextToken } }`, nil), http.StatusOK, "INVALID")
	s.wantError(s.gql(asAdmin, `{ deadLetters(limit: 0) { nextToken } }`, nil), http.StatusOK, "INVALID")
	s.noInternalErrors()
	shallow.noInternalErrors()
}

// nested returns a flight filter nested n levels deep through not.
func nested(n int) map[string]any {
	f := map[string]any{"flightNumber": map[string]any{"eq": 1}}
	for range n {
		f = map[string]any{"not": f}
	}
	return f
}

func TestMethodsAndGET(t *testing.T) {
	t.Parallel()
	s := setup(t)
	get := func(params url.Values) *response {
		req := httptest.NewRequest(http.MethodGet, "/graphql?"+params.Encode(), nil)
		req.Header.Set("X-Test-Actor", asAlice)
		return s.send(req)
	}
	me := must[struct{ Sub string }](s, get(url.Values{"query": {`query($x: Boolean!) { me @include(if: $x) { sub } }`}, "variables": {`{"x": true}`}}), "me")
	if me.Sub != "alice" {
		t.Fatalf("GET me: %+v", me)
	}
	s.wantError(get(url.Values{"query": {`mutation { createCharge(amount: 1, currency: "EUR", token: "tok_visa") { id } }`}}), http.StatusMethodNotAllowed, "INVALID")
	s.wantError(get(url.Values{"query": {`{ me { sub } }`}, "variables": {`{`}}), http.StatusBadRequest, "INVALID")
	s.wantError(get(url.Values{}), http.StatusBadRequest, "INVALID")
	for _, m := range []string{http.MethodPut, http.MethodDelete, http.MethodPatch} {
		r := s.send(httptest.NewRequest(m, "/graphql", strings.NewReader(`{"query": "{ me { sub } }"}`)))
		s.wantError(r, http.StatusMethodNotAllowed, "INVALID")
	}
	// Content-Type with parameters is fine.
	r := s.post(asAlice, "application/json; charset=utf-8", []byte(`{"query": "{ me { sub } }"}`))
	if must[struct{ Sub string }](s, r, "me").Sub != "alice" {
		t.Fatalf("POST with charset: %s", r.raw)
	}
}

func TestPersistedQueries(t *testing.T) {
	t.Parallel()
	s := setup(t)
	query := `{ me { sub username } }`
	sum := sha256.Sum256([]byte(query))
	ext := map[string]any{"persistedQuery": map[string]any{"version": 1, "sha256Hash": hex.EncodeToString(sum[:])}}
	body := func(withQuery bool) []byte {
		m := map[string]any{"extensions": ext}
		if withQuery {
			m["query"] = query
		}
		b, _ := json.Marshal(m)
		return b
	}
	s.wantError(s.post(asAlice, "application/json", body(false)), http.StatusOK, "PERSISTED_QUERY_NOT_FOUND")
	must[struct{ Sub string }](s, s.post(asAlice, "application/json", body(true)), "me")
	if got := must[struct{ Sub string }](s, s.post(asAlice, "application/json", body(false)), "me"); got.Sub != "alice" {
		t.Fatalf("persisted query: %+v", got)
	}
	ext["persistedQuery"] = map[string]any{"version": 1, "sha256Hash": "0000"}
	s.wantError(s.post(asAlice, "application/json", body(true)), http.StatusBadRequest, "INVALID")
}

// TestInternalErrorsAreHidden: a failing store and a panicking resolver
// become INTERNAL without their details, which are logged instead; the
// rest of the operation still runs.
func TestInternalErrorsAreHidden(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	for _, c := range []struct {
		name   string
		hook   func() error
		detail string
	}{
		{"store error", func() error { return errors.New("disk on fire") }, "disk on fire"},
		{"wrapped store error", func() error { return fmt.Errorf("reading: %w", errors.New("sector 7 unreadable")) }, "sector 7 unreadable"},
		{"panic", func() error { panic("cosmic ray") }, "cosmic ray"},
		{"panic with an error", func() error { panic(errors.New("nil map in resolver")) }, "nil map in resolver"},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			s.store.onView.Store(&c.hook)
			r := s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { id } me { sub } }`, map[string]any{"id": f.ID})
			s.store.onView.Store(nil)
			e := s.wantError(r, http.StatusOK, "INTERNAL")
			if e.Message != "internal error" || strings.Contains(r.raw, c.detail) || len(e.Path) != 1 || e.Path[0] != "getFlight" {
				t.Fatalf("the error: %s", r.raw)
			}
			var me struct{ Sub string }
			if err := json.Unmarshal(r.Data["me"], &me); err != nil || me.Sub != "alice" || string(r.Data["getFlight"]) != "null" {
				t.Fatalf("the rest of the operation: %s", r.raw)
			}
			if !strings.Contains(s.logs.String(), c.detail) {
				t.Fatalf("the error was not logged: %s", s.logs)
			}
		})
	}
}
