package graphql

import (
	"bytes"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/berthhq/berth/internal/testdb"
)

// metachars are strings that break naive SQL, JSON, log or URL handling.
// Each goes into every string argument of every operation: it must be
// refused with a clear code or stored and read back verbatim; never a 5xx,
// an INTERNAL error or a panic, and a refused mutation writes nothing.
var metachars = []string{
	`'`, `"`, `;`, `--`, `/*`, `*/`, "\x00", `' OR '1'='1`, `'; DROP TABLE flights; --`, `" OR ""="`,
	`\`, `%_`, `$1 ?`, "ü日本語🚀", "\u202eRTL\ufeff", "tab\tnew\nline\r", "\x01\x1f\x7f", `<script>alert(1)</script>`, `null`,
}

// allowedRefusals are the codes hostile input may be refused with.
var allowedRefusals = []string{"INVALID", "NOT_FOUND", "CONFLICT", "UNAUTHENTICATED", "FORBIDDEN", "PAYMENT_DECLINED"}

// hostileCase is one string argument of one operation.
type hostileCase struct {
	name  string
	actor string
	query string
	vars  func(p string, i int) map[string]any
	// check, if set, runs when the operation succeeded: read the value
	// back and compare it with p.
	check func(t *testing.T, s *stack, data json.RawMessage, p string)
	// writesOnRefusal lists the codes with which a refusal may still
	// write (createCharge keeps the provider's refusals as FAILED charges).
	writesOnRefusal []string
}

// TestSQLMetacharacters runs every metachar through every string argument
// of every mutation and query, on every database.
func TestSQLMetacharacters(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			url := testdb.URL(t, dialect)
			s := newHostileStack(t, url, false)
			s.t = t
			raw := openRaw(t, url)
			runMetacharacters(t, s, raw)
		})
	}
}

func runMetacharacters(t *testing.T, s *stack, raw *rawDB) {
	base := s.createFlight(flightInput(1, "2027-03-01T08:00:00Z", "LGW", "MAD", 1000))
	flightVars := func(field string) func(p string, i int) map[string]any {
		return func(p string, i int) map[string]any {
			return map[string]any{"in": flightInput(1000+i, "2027-03-01T08:00:00Z", "LGW", "MAD", 10, field, p)}
		}
	}
	readFlight := func(field string) func(*testing.T, *stack, json.RawMessage, string) {
		return func(t *testing.T, s *stack, data json.RawMessage, p string) {
			var f map[string]any
			if err := json.Unmarshal(data, &f); err != nil {
				t.Fatalf("%s: %v", data, err)
			}
			if f[field] != p {
				t.Fatalf("%s came back as %q, sent %q", field, f[field], p)
			}
			id, _ := f["id"].(string)
			got := must[flight](s, s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, map[string]any{"id": id}), "getFlight")
			b, _ := json.Marshal(got)
			var again map[string]any
			_ = json.Unmarshal(b, &again)
			// flight (the test type) has only some fields; ask for this
			// one by a filter too: eq on the stored text finds it.
			filter := map[string]any{field: map[string]any{"eq": p}, "id": map[string]any{"eq": id}}
			list := must[page[struct{ ID string }]](s, s.gql(asAlice, `query($f: ModelFlightFilterInput) { listFlights(filter: $f, limit: 1000) { items { id } } }`,
				map[string]any{"f": filter}), "listFlights")
			if len(list.Items) != 1 {
				t.Fatalf("filter %s eq %q found %d flights", field, p, len(list.Items))
			}
		}
	}
	const flightSel = `id departureDate departureAirportCode departureAirportName departureCity departureLocale arrivalDate
		arrivalAirportCode arrivalAirportName arrivalCity arrivalLocale ticketCurrency`
	var cases []hostileCase
	for _, field := range []string{"id", "departureDate", "departureAirportCode", "departureAirportName", "departureCity", "departureLocale",
		"arrivalDate", "arrivalAirportCode", "arrivalAirportName", "arrivalCity", "arrivalLocale", "ticketCurrency"} {
		cases = append(cases, hostileCase{name: "createFlight." + field, actor: asAdmin,
			query: `mutation($in: CreateFlightInput!) { createFlight(input: $in) { ` + flightSel + ` } }`,
			vars:  flightVars(field), check: readFlight(field)})
		if field == "id" {
			continue
		}
		cases = append(cases, hostileCase{name: "updateFlight." + field, actor: asAdmin,
			query: `mutation($in: UpdateFlightInput!) { updateFlight(input: $in) { ` + flightSel + ` } }`,
			vars: func(p string, _ int) map[string]any {
				return map[string]any{"in": map[string]any{"id": base.ID, field: p}}
			},
			check: readFlight(field)})
	}
	idCase := func(name, actor, query string) hostileCase {
		return hostileCase{name: name, actor: actor, query: query, vars: func(p string, _ int) map[string]any { return map[string]any{"id": p} }}
	}
	cases = append(cases,
		idCase("updateFlight.id", asAdmin, `mutation($id: ID!) { updateFlight(input: {id: $id, departureCity: "x"}) { id } }`),
		idCase("deleteFlight.id", asAdmin, `mutation($id: ID!) { deleteFlight(input: {id: $id}) { id } }`),
		idCase("cancelBooking.id", asAlice, `mutation($id: ID!) { cancelBooking(id: $id) { id } }`),
		idCase("updateBooking.id", asAdmin, `mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id } }`),
		idCase("deleteBooking.id", asAdmin, `mutation($id: ID!) { deleteBooking(input: {id: $id}) { id } }`),
		idCase("deleteWebhook.id", asAdmin, `mutation($id: ID!) { deleteWebhook(id: $id) { id } }`),
		idCase("redriveExecution.id", asAdmin, `mutation($id: ID!) { redriveExecution(id: $id) { id } }`),
	)

	// processBooking: the flight and the charge must be real; the fields it
	// ignores may hold anything and change nothing.
	book := func(field string, ignored bool) hostileCase {
		return hostileCase{name: "processBooking." + field, actor: asAlice, query: processBooking,
			vars: func(p string, _ int) map[string]any {
				in := map[string]any{"bookingOutboundFlightId": base.ID, "paymentToken": s.charge(asAlice, 10000, "tok_visa")}
				in[field] = p
				return map[string]any{"in": in}
			},
			check: func(t *testing.T, s *stack, data json.RawMessage, p string) {
				var b booking
				_ = json.Unmarshal(data, &b)
				if !ignored && field != "idempotencyKey" {
					t.Fatalf("processBooking accepted %s %q", field, p)
				}
				if b.Customer == nil || *b.Customer != asAlice || b.Status != "UNCONFIRMED" || b.BookingReference != nil {
					t.Fatalf("processBooking took %s %q from the input: %+v", field, p, b)
				}
				if field == "idempotencyKey" { // the same key, the same booking
					again := must[booking](s, s.gql(asAlice, processBooking, map[string]any{"in": map[string]any{
						"bookingOutboundFlightId": base.ID, "paymentToken": b.PaymentToken, "idempotencyKey": p}}), "processBooking")
					if again.ID != b.ID {
						t.Fatalf("idempotency key %q: a second booking %s (first %s)", p, again.ID, b.ID)
					}
				}
			}}
	}
	cases = append(cases, book("bookingOutboundFlightId", false), book("paymentToken", false), book("idempotencyKey", false),
		book("customer", true), book("createdAt", true), book("bookingReference", true), book("id", true))

	// createBooking (Admin): customer and reference are stored verbatim.
	refs := 0 // booking references are unique: number the ones not under test
	adminBook := func(field string) hostileCase {
		return hostileCase{name: "createBooking." + field, actor: asAdmin,
			query: `mutation($in: CreateBookingInput!) { createBooking(input: $in) { id customer bookingReference paymentToken } }`,
			vars: func(p string, i int) map[string]any {
				refs++
				in := map[string]any{"bookingOutboundFlightId": base.ID, "paymentToken": "x", "status": "CONFIRMED", "customer": "cust",
					"bookingReference": fmt.Sprintf("REF%05d", refs)}
				in[field] = p
				if field == "bookingReference" { // updateBooking stores p itself
					in[field] = "c" + p
				}
				return map[string]any{"in": in}
			},
			check: func(t *testing.T, s *stack, data json.RawMessage, p string) {
				var b struct{ ID, Customer, BookingReference string }
				_ = json.Unmarshal(data, &b)
				got := must[struct{ Customer, BookingReference string }](s,
					s.gql(asAdmin, `query($id: ID!) { getBooking(id: $id) { customer bookingReference } }`, map[string]any{"id": b.ID}), "getBooking")
				switch field {
				case "customer":
					if got.Customer != p {
						t.Fatalf("customer came back as %q, sent %q", got.Customer, p)
					}
				case "bookingReference":
					if got.BookingReference != "c"+p {
						t.Fatalf("bookingReference came back as %q, sent %q", got.BookingReference, p)
					}
				}
			}}
	}
	cases = append(cases, adminBook("id"), adminBook("customer"), adminBook("bookingReference"), adminBook("bookingOutboundFlightId"),
		adminBook("paymentToken"), adminBook("createdAt"))
	target := must[booking](s, s.gql(asAdmin, `mutation($in: CreateBookingInput!) { createBooking(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"bookingOutboundFlightId": base.ID, "paymentToken": "x", "status": "CONFIRMED", "customer": "cust"}}), "createBooking")
	cases = append(cases, hostileCase{name: "updateBooking.bookingReference", actor: asAdmin,
		query: `mutation($id: ID!, $r: String) { updateBooking(input: {id: $id, bookingReference: $r}) { bookingReference } }`,
		vars:  func(p string, _ int) map[string]any { return map[string]any{"id": target.ID, "r": p} },
		check: func(t *testing.T, s *stack, data json.RawMessage, p string) {
			got := must[struct{ BookingReference string }](s,
				s.gql(asAdmin, `query($id: ID!) { getBooking(id: $id) { bookingReference } }`, map[string]any{"id": target.ID}), "getBooking")
			if got.BookingReference != p {
				t.Fatalf("bookingReference came back as %q, sent %q", got.BookingReference, p)
			}
		}})

	// createCharge: the provider's refusals are recorded as FAILED charges.
	chargeCase := func(field string) hostileCase {
		return hostileCase{name: "createCharge." + field, actor: asAlice, writesOnRefusal: []string{"PAYMENT_DECLINED", "INVALID"},
			query: `mutation($a: Int!, $c: String!, $t: String!, $k: String) { createCharge(amount: $a, currency: $c, token: $t, idempotencyKey: $k) { id currency } }`,
			vars: func(p string, _ int) map[string]any {
				v := map[string]any{"a": 100, "c": "EUR", "t": "tok_visa", "k": nil}
				v[map[string]string{"currency": "c", "token": "t", "idempotencyKey": "k"}[field]] = p
				return v
			},
			check: func(t *testing.T, s *stack, data json.RawMessage, p string) {
				var c struct{ ID, Currency string }
				_ = json.Unmarshal(data, &c)
				switch field {
				case "idempotencyKey":
					again := must[struct{ ID string }](s, s.gql(asAlice, `mutation($k: String) { createCharge(amount: 100, currency: "EUR", token: "tok_visa", idempotencyKey: $k) { id } }`,
						map[string]any{"k": p}), "createCharge")
					if again.ID != c.ID {
						t.Fatalf("idempotency key %q: a second charge", p)
					}
				case "currency":
					if c.Currency != "EUR" && c.Currency != strings.ToUpper(strings.TrimSpace(p)) {
						t.Fatalf("currency %q became %q", p, c.Currency)
					}
				}
			}}
	}
	cases = append(cases, chargeCase("currency"), chargeCase("token"), chargeCase("idempotencyKey"))

	// signUp and signIn: a password is any text, and signs in verbatim.
	cases = append(cases,
		hostileCase{name: "signUp.username", actor: asAnonymous,
			query: `mutation($u: String!) { signUp(username: $u, password: "long enough password") { username } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"u": p} }},
		hostileCase{name: "signUp.email", actor: asAnonymous,
			query: `mutation($u: String!, $e: String) { signUp(username: $u, email: $e, password: "long enough password") { username } }`,
			vars: func(p string, i int) map[string]any {
				return map[string]any{"u": fmt.Sprintf("mail%d", i), "e": "a" + p + "@example.com"}
			}},
		hostileCase{name: "signUp.password", actor: asAnonymous,
			query: `mutation($u: String!, $p: String!) { signUp(username: $u, password: $p) { username } }`,
			vars: func(p string, i int) map[string]any {
				return map[string]any{"u": fmt.Sprintf("pass%d", i), "p": "password" + p}
			},
			check: func(t *testing.T, s *stack, data json.RawMessage, p string) {
				var a struct{ Username string }
				_ = json.Unmarshal(data, &a)
				must[struct{ AccessToken string }](s, s.gql(asAnonymous, `mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { accessToken } }`,
					map[string]any{"u": a.Username, "p": "password" + p}), "signIn")
				r := s.gql(asAnonymous, `mutation($u: String!, $p: String!) { signIn(username: $u, password: $p) { accessToken } }`,
					map[string]any{"u": a.Username, "p": "password"})
				if r.code() != "UNAUTHENTICATED" {
					t.Fatalf("signIn without the metacharacters: %s", r.raw)
				}
			}},
		hostileCase{name: "signIn.username", actor: asAnonymous,
			query: `mutation($u: String!) { signIn(username: $u, password: "whatever it is") { accessToken } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"u": p} }},
		hostileCase{name: "signIn.password", actor: asAnonymous,
			query: `mutation($p: String!) { signIn(username: "pass0", password: $p) { accessToken } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"p": p} }},
	)

	// Webhooks: the URL and event types are stored verbatim.
	readHook := func(t *testing.T, s *stack, data json.RawMessage, p string) {
		var w struct {
			ID, URL    string
			EventTypes []string
		}
		_ = json.Unmarshal(data, &w)
		hooks := must[[]struct {
			ID, URL    string
			EventTypes []string
		}](s, s.gql(asAdmin, `{ webhooks { id url eventTypes } }`, nil), "webhooks")
		for _, h := range hooks {
			if h.ID == w.ID {
				if h.URL != w.URL || !slices.Equal(h.EventTypes, w.EventTypes) {
					t.Fatalf("webhook came back as %+v, registered %+v", h, w)
				}
				return
			}
		}
		t.Fatalf("webhook %s is not listed", w.ID)
	}
	cases = append(cases,
		hostileCase{name: "registerWebhook.url", actor: asAdmin, check: readHook,
			query: `mutation($u: String!) { registerWebhook(url: $u, eventTypes: ["NoSuchEvent"]) { id url eventTypes } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"u": "https://example.com/hook?q=" + p} }},
		hostileCase{name: "registerWebhook.eventTypes", actor: asAdmin, check: readHook,
			query: `mutation($e: [String!]) { registerWebhook(url: "https://example.com/", eventTypes: $e) { id url eventTypes } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"e": []string{p}} }},
	)

	// Queries: arguments, key conditions and every string filter operator.
	cases = append(cases,
		idCase("getFlight.id", asAlice, `query($id: ID!) { getFlight(id: $id) { id } }`),
		idCase("getBooking.id", asAlice, `query($id: ID!) { getBooking(id: $id) { id } }`),
		idCase("execution.id", asAdmin, `query($id: ID!) { execution(id: $id) { id } }`),
		idCase("bookingExecution.bookingId", asAdmin, `query($id: ID!) { bookingExecution(bookingId: $id) { id } }`),
		idCase("bookingExecution.saga", asAdmin, `query($id: String) { bookingExecution(bookingId: "x", saga: $id) { id } }`),
		idCase("getLoyalty.customer", asAdmin, `query($id: String) { getLoyalty(customer: $id) { points } }`),
		idCase("getBookingByStatus.customer", asAlice, `query($id: String) { getBookingByStatus(customer: $id) { items { id } } }`),
		idCase("getFlightBySchedule.departureAirportCode", asAlice, `query($id: String) { getFlightBySchedule(departureAirportCode: $id) { items { id } } }`),
	)
	for _, q := range []string{"listFlights", "getFlightBySchedule(departureAirportCode: \"LGW\")", "listBookings", "getBookingByStatus", "deadLetters"} {
		name, args, _ := strings.Cut(q, "(")
		if args != "" {
			args = strings.TrimSuffix(args, ")") + ", "
		}
		cases = append(cases, hostileCase{name: name + ".nextToken", actor: asAdmin,
			query: `query($t: String) { ` + name + `(` + args + `nextToken: $t) { items { id } nextToken } }`,
			vars:  func(p string, _ int) map[string]any { return map[string]any{"t": p} }})
	}
	for _, op := range []string{"eq", "le", "lt", "ge", "gt", "beginsWith", "between"} {
		cases = append(cases, hostileCase{name: "getFlightBySchedule.key." + op, actor: asAlice,
			query: `query($k: ModelFlightByDepartureScheduleCompositeKeyConditionInput) { getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCodeDepartureDate: $k) { items { id } } }`,
			vars: func(p string, _ int) map[string]any {
				k := map[string]any{"arrivalAirportCode": p, "departureDate": p}
				if op == "between" {
					return map[string]any{"k": map[string]any{op: []any{k, k}}}
				}
				return map[string]any{"k": map[string]any{op: k}}
			}},
			hostileCase{name: "getBookingByStatus.status." + op, actor: asAlice,
				query: `query($k: ModelStringKeyConditionInput) { getBookingByStatus(status: $k) { items { id } } }`,
				vars: func(p string, _ int) map[string]any {
					if op == "between" {
						return map[string]any{"k": map[string]any{op: []any{p, p}}}
					}
					return map[string]any{"k": map[string]any{op: p}}
				}})
	}
	// Filters: every string field with every operator, in one filter.
	filterOps := []string{"eq", "ne", "le", "lt", "ge", "gt", "contains", "notContains", "beginsWith", "between"}
	flightStrings := []string{"id", "departureDate", "departureAirportCode", "departureAirportName", "departureCity", "departureLocale",
		"arrivalDate", "arrivalAirportCode", "arrivalAirportName", "arrivalCity", "arrivalLocale", "ticketCurrency"}
	bookingStrings := []string{"id", "paymentToken", "customer", "createdAt", "bookingReference", "bookingOutboundFlightId"}
	for _, actor := range []string{asAlice, asAPIKey} {
		cases = append(cases, hostileCase{name: "listFlights.filter." + actor, actor: actor,
			query: `query($f: ModelFlightFilterInput) { listFlights(filter: $f) { items { id } } }`,
			vars: func(p string, _ int) map[string]any {
				return map[string]any{"f": stringFilter(flightStrings, p, filterOps)}
			}})
	}
	cases = append(cases,
		hostileCase{name: "getFlightBySchedule.filter", actor: asAlice,
			query: `query($f: ModelFlightFilterInput) { getFlightBySchedule(departureAirportCode: "LGW", filter: $f) { items { id } } }`,
			vars: func(p string, _ int) map[string]any {
				return map[string]any{"f": stringFilter(flightStrings, p, filterOps)}
			}},
		hostileCase{name: "listBookings.filter", actor: asAdmin,
			query: `query($f: ModelBookingFilterInput) { listBookings(filter: $f) { items { id } } }`,
			vars: func(p string, _ int) map[string]any {
				return map[string]any{"f": stringFilter(bookingStrings, p, filterOps)}
			}},
		hostileCase{name: "getBookingByStatus.filter", actor: asAlice,
			query: `query($f: ModelBookingFilterInput) { getBookingByStatus(filter: $f) { items { id } } }`,
			vars: func(p string, _ int) map[string]any {
				return map[string]any{"f": stringFilter(bookingStrings, p, filterOps)}
			}},
	)

	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			defer func() { s.t = nil }()
			var stored, refused []string
			defer func() { t.Logf("stored %d, refused %v", len(stored), refused) }()
			for i, p := range metachars {
				vars := c.vars(p, i)
				before := raw.writes(t)
				r := s.gql(c.actor, c.query, vars)
				after := raw.writes(t)
				if len(r.Errors) == 0 {
					stored = append(stored, p)
					if r.Status != http.StatusOK {
						t.Fatalf("%q: status %d without errors", p, r.Status)
					}
					if c.check != nil {
						for _, d := range r.Data {
							c.check(t, s, d, p)
						}
					}
				} else {
					code := r.code()
					refused = append(refused, code)
					if !slices.Contains(allowedRefusals, code) {
						t.Fatalf("%q: refused with %s: %s", p, code, r.raw)
					}
					if strings.Contains(p, "\x00") && code != "INVALID" {
						t.Fatalf("%q: NUL refused with %s, want INVALID", p, code)
					}
					if strings.HasPrefix(c.query, "mutation") && !slices.Contains(c.writesOnRefusal, code) {
						if diff := changed(before, after); len(diff) > 0 {
							t.Fatalf("%q: refused with %s but wrote: %v", p, code, diff)
						}
					}
				}
			}
		})
	}
	s.t = t
	s.noInternalErrors()
	// Every table is still there, and the first flight is intact.
	if f := must[flight](s, s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, map[string]any{"id": base.ID}), "getFlight"); f.ID != base.ID || f.DepartureAirportCode != "LGW" {
		t.Fatalf("the first flight: %+v", f)
	}
	for _, table := range []string{"flights", "resources", "accounts", "bookings", "charges", "webhooks"} {
		if raw.count(t, table) == 0 {
			t.Errorf("table %s is empty", table)
		}
	}
}

// stringFilter is a filter with every operator of ops on every field of
// fields set to p, in an or, so that each is evaluated, and a not.
func stringFilter(fields []string, p string, ops []string) map[string]any {
	var or []any
	for _, field := range fields {
		for _, op := range ops {
			v := any(p)
			if op == "between" {
				v = []any{p, p}
			}
			or = append(or, map[string]any{field: map[string]any{op: v}})
		}
	}
	return map[string]any{"or": or, "not": map[string]any{fields[0]: map[string]any{"eq": p}}}
}

// TestHostileQueries: wide, deep, long and repeated operations are refused
// quickly with a code, never answered with 5xx, never allowed to run away.
func TestHostileQueries(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10))
	repeat := func(n int, format string) string {
		var b strings.Builder
		for i := range n {
			fmt.Fprintf(&b, format, i)
		}
		return b.String()
	}
	vars10k := map[string]any{}
	decl := make([]string, 10_000)
	for i := range decl {
		decl[i] = fmt.Sprintf("$v%d: String", i)
		vars10k[fmt.Sprintf("v%d", i)] = "x"
	}
	fragments := func(n int) string { // a fragment that doubles n times: 2^n fields if expanded
		var b strings.Builder
		b.WriteString("query { ...F0 }\n")
		for i := range n {
			fmt.Fprintf(&b, "fragment F%d on Query { ...F%d ...F%d }\n", i, i+1, i+1)
		}
		fmt.Fprintf(&b, "fragment F%d on Query { me { sub } }\n", n)
		return b.String()
	}
	for _, c := range []struct {
		name   string
		actor  string
		body   any
		status int
		code   string
		reason string
	}{
		{"300 aliases of a page of 1000", asAlice, map[string]any{"query": "{" + repeat(300, " a%d: listFlights(limit: 1000) { items { id } }") + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"300 aliases of listBookings", asAlice, map[string]any{"query": "{" + repeat(300, " a%d: listBookings { items { id outboundFlight { id } } }") + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"300 aliases of signIn", asAnonymous, map[string]any{"query": "mutation {" + repeat(300, ` a%d: signIn(username: "alice", password: "guess-0000") { accessToken }`) + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"3 aliases of signUp", asAnonymous, map[string]any{"query": "mutation {" + repeat(3, ` a%d: signUp(username: "u%[1]d", password: "password-0000") { sub }`) + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"200 aliases of createCharge", asAlice, map[string]any{"query": "mutation {" + repeat(200, ` a%d: createCharge(amount: 1, currency: "EUR", token: "tok_visa") { id }`) + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"200 aliases of processBooking", asAlice, map[string]any{"query": "mutation {" + repeat(200, ` a%d: processBooking(input: {bookingOutboundFlightId: "x", paymentToken: "y"}) { id }`) + " }"},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"a query of 1 MiB", asAlice, map[string]any{"query": "{ me { sub } } #" + strings.Repeat("x", 1<<20)}, 413, "INVALID", ""},
		{"a query of 1 MiB of tokens", asAlice, map[string]any{"query": "{" + strings.Repeat(" me { sub }", (1<<20-100)/11) + " }"}, 400, "INVALID", "GRAPHQL_PARSE_FAILED"},
		{"a query of 1 MiB of comments", asAlice, map[string]any{"query": "{ me { sub } }" + strings.Repeat(" # a comment\n", (1<<20-100)/16)}, 400, "INVALID", "GRAPHQL_PARSE_FAILED"},
		{"a query of 1 MiB of blanks", asAlice, map[string]any{"query": "{ me { sub } }" + strings.Repeat(" ", 1<<20-100)}, 200, "", ""},
		{"a string argument of 1000 KiB", asAlice, map[string]any{"query": `query($id: ID!) { getFlight(id: $id) { id } }`, "variables": map[string]any{"id": strings.Repeat("'", 1000<<10)}},
			200, "NOT_FOUND", ""},
		{"10,000 declared variables", asAlice, map[string]any{"query": "query(" + strings.Join(decl, ", ") + ") { me { sub } }", "variables": vars10k},
			400, "INVALID", ""},
		{"10,000 undeclared variables", asAlice, map[string]any{"query": "{ me { sub } }", "variables": vars10k}, 200, "", ""},
		{"nesting 5000 deep", asAlice, map[string]any{"query": strings.Repeat("{ me ", 5000) + strings.Repeat("}", 5000)}, 400, "INVALID", ""},
		{"a filter nested 5000 deep", asAlice, map[string]any{"query": `query($f: ModelFlightFilterInput) { listFlights(filter: $f) { items { id } } }`,
			"variables": map[string]any{"f": nested(5000)}}, 200, "INVALID", ""},
		{"a filter with 10,000 or clauses", asAlice, map[string]any{"query": `query($f: ModelFlightFilterInput) { listFlights(filter: $f) { items { id } } }`,
			"variables": map[string]any{"f": map[string]any{"or": slices.Repeat([]any{map[string]any{"flightNumber": map[string]any{"eq": 1}}}, 10_000)}}}, 200, "", ""},
		{"between with 100,000 values", asAlice, map[string]any{"query": `query($b: [Int]) { listFlights(filter: {flightNumber: {between: $b}}) { items { id } } }`,
			"variables": map[string]any{"b": slices.Repeat([]any{1}, 100_000)}}, 200, "INVALID", ""},
		{"10,000 event types", asAdmin, map[string]any{"query": `mutation($e: [String!]) { registerWebhook(url: "https://example.com/", eventTypes: $e) { id } }`,
			"variables": map[string]any{"e": slices.Repeat([]any{"BookingConfirmed"}, 10_000)}}, 200, "INVALID", ""},
		{"fragments doubling 40 times", asAlice, map[string]any{"query": fragments(40)}, 400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		{"fragments doubling 40 times in introspection", asAlice, map[string]any{"query": strings.Replace(fragments(40), "me { sub }", "__schema { queryType { name } }", 1)},
			400, "INVALID", "COMPLEXITY_LIMIT_EXCEEDED"},
		// Validation compares same-named fields pairwise: the token limit
		// (5000) keeps the worst case near a tenth of a second.
		{"1240 identical fields", asAlice, map[string]any{"query": "{" + strings.Repeat(" me { sub }", 1240) + " }"}, 200, "", ""},
		{"5000 identical fields", asAlice, map[string]any{"query": "{" + strings.Repeat(" me { sub }", 5000) + " }"}, 400, "INVALID", "GRAPHQL_PARSE_FAILED"},
		{"800 aliases of one field", asAlice, map[string]any{"query": "{" + repeat(800, " a%d: me { sub }") + " }"}, 200, "", ""},
		{"450 aliases of getFlight", asAlice, map[string]any{"query": "{" + repeat(450, " a%d: getFlight(id: \""+f.ID+"\") { id }") + " }"}, 200, "", ""},
		{"2001 aliases of getFlight", asAlice, map[string]any{"query": "{" + repeat(2001, " a%d: getFlight(id: \"x\") { id }") + " }"}, 400, "INVALID", "GRAPHQL_PARSE_FAILED"},
		{"two operations, no name", asAlice, map[string]any{"query": "query A { me { sub } } query B { me { sub } }"}, 400, "INVALID", "GRAPHQL_VALIDATION_FAILED"},
		{"a batch of operations", asAlice, []any{map[string]any{"query": "{ me { sub } }"}, map[string]any{"query": "{ me { sub } }"}}, 400, "INVALID", ""},
		{"introspection nested deep", asAlice, map[string]any{"query": "{ __schema { types { fields { type { fields { type { fields { type { fields { name } } } } } } } } } }"},
			400, "INVALID", ""},
	} {
		t.Run(c.name, func(t *testing.T) {
			s.t = t
			defer func() { s.t = nil }()
			body, err := json.Marshal(c.body)
			if err != nil {
				t.Fatal(err)
			}
			req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
			req.Header.Set("Content-Type", "application/json")
			req.Header.Set("X-Test-Actor", c.actor)
			start := time.Now()
			rec := httptest.NewRecorder()
			done := make(chan struct{})
			go func() { defer close(done); s.h.ServeHTTP(rec, req) }()
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				t.Fatalf("no answer after 20s")
			}
			took := time.Since(start)
			r := s.decode(rec)
			if r.Status != c.status || r.code() != c.code {
				t.Fatalf("status %d code %q, want %d %q: %.500s", r.Status, r.code(), c.status, c.code, r.raw)
			}
			if reason, _ := r.errReason(); c.reason != "" && reason != c.reason {
				t.Fatalf("reason %q, want %q: %.500s", reason, c.reason, r.raw)
			}
			if len(r.raw) > 64<<10 && c.code != "" {
				t.Fatalf("a refusal of %d bytes: the request is echoed", len(r.raw))
			}
			t.Logf("%d %s in %s", r.Status, r.code(), took.Round(time.Millisecond))
		})
	}
	s.t = t
	// The flight was not touched by any of it.
	if got := must[flight](s, s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, map[string]any{"id": f.ID}), "getFlight"); got.SeatCapacity != 10 {
		t.Fatalf("flight: %+v", got)
	}
	s.noInternalErrors()
}

// errReason returns extensions.reason of the first error.
func (r *response) errReason() (string, bool) {
	if len(r.Errors) == 0 {
		return "", false
	}
	s, ok := r.Errors[0].Extensions["reason"].(string)
	return s, ok
}

// decode checks and decodes a recorded response as send does.
func (s *stack) decode(rec *httptest.ResponseRecorder) *response {
	s.t.Helper()
	r := &response{Status: rec.Code, raw: rec.Body.String()}
	if rec.Code >= 500 {
		s.t.Fatalf("status %d: %.1000s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), r); err != nil {
		s.t.Fatalf("status %d, body is not JSON: %v: %.1000s", rec.Code, err, rec.Body)
	}
	for _, e := range r.Errors {
		if e.code() == "" {
			s.t.Fatalf("error without extensions.code: %.1000s", rec.Body)
		}
	}
	return r
}

// TestKeyConditionsOnEveryDatabase: the key conditions of
// getFlightBySchedule and getBookingByStatus give the same pages on SQLite
// and PostgreSQL; gt once built its bound with a NUL byte, which
// PostgreSQL refuses.
func TestKeyConditionsOnEveryDatabase(t *testing.T) {
	t.Parallel()
	for _, dialect := range testdb.Dialects() {
		t.Run(dialect, func(t *testing.T) {
			t.Parallel()
			s := newHostileStack(t, testdb.URL(t, dialect), false)
			s.t = t
			for i, h := range []string{"08", "09", "10"} {
				s.createFlight(flightInput(i+1, "2027-06-01T"+h+":00:00Z", "LGW", "MAD", 10))
			}
			for _, c := range []struct {
				op   string
				want []int
			}{
				{"gt", []int{3}}, {"ge", []int{2, 3}}, {"lt", []int{1}}, {"le", []int{1, 2}}, {"eq", []int{2}}, {"beginsWith", []int{2}},
			} {
				key := map[string]any{"arrivalAirportCode": "MAD", "departureDate": "2027-06-01T09:00:00Z"}
				if c.op == "beginsWith" {
					key["departureDate"] = "2027-06-01T09"
				}
				p := must[page[flight]](s, s.gql(asAlice, `query($k: ModelFlightByDepartureScheduleCompositeKeyConditionInput) {
					getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCodeDepartureDate: $k) { items { flightNumber } } }`,
					map[string]any{"k": map[string]any{c.op: key}}), "getFlightBySchedule")
				var got []int
				for _, f := range p.Items {
					got = append(got, f.FlightNumber)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("departure %s 09:00: flights %v, want %v", c.op, got, c.want)
				}
			}
			f := s.createFlight(flightInput(9, "2027-06-02T08:00:00Z", "LGW", "MAD", 10))
			for _, st := range []string{"CONFIRMED", "UNCONFIRMED"} {
				must[booking](s, s.gql(asAdmin, `mutation($in: CreateBookingInput!) { createBooking(input: $in) { id } }`, map[string]any{"in": map[string]any{
					"bookingOutboundFlightId": f.ID, "paymentToken": "x", "status": st, "customer": asAlice}}), "createBooking")
			}
			for _, c := range []struct {
				op, value string
				want      []string
			}{
				{"gt", "CONFIRMED", []string{"UNCONFIRMED"}}, {"ge", "CONFIRMED", []string{"CONFIRMED", "UNCONFIRMED"}},
				{"lt", "UNCONFIRMED", []string{"CONFIRMED"}}, {"le", "CONFIRMED", []string{"CONFIRMED"}}, {"eq", "UNCONFIRMED", []string{"UNCONFIRMED"}},
			} {
				p := must[page[booking]](s, s.gql(asAlice, `query($k: ModelStringKeyConditionInput) { getBookingByStatus(status: $k) { items { status } } }`,
					map[string]any{"k": map[string]any{c.op: c.value}}), "getBookingByStatus")
				var got []string
				for _, b := range p.Items {
					got = append(got, b.Status)
				}
				if !slices.Equal(got, c.want) {
					t.Errorf("status %s %s: %v, want %v", c.op, c.value, got, c.want)
				}
			}
			s.noInternalErrors()
		})
	}
}
