package main

import (
	"database/sql"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestAuthorizationMatrix runs every GraphQL operation of the schema and
// every REST route as each kind of caller against the real server, checks
// the outcome of each cell, checks that a refusal wrote nothing, and
// prints the table into docs/SECURITY.md:
//
//	BERTH_UPDATE_DOCS=1 go test -run TestAuthorizationMatrix ./cmd/berth/
//
// Without BERTH_UPDATE_DOCS the test fails if the table in the docs is not
// the one it produced. The columns: no credentials; an API key; the
// customer who owns the object the operation names (alice: her booking,
// her charge, her loyalty); another customer (bob) naming alice's object;
// a member of the Admin group naming alice's object.
func TestAuthorizationMatrix(t *testing.T) {
	t.Parallel()
	s := startServer(t, t.TempDir(), "--step-backoff", "20ms", "--step-attempts", "2")
	w := newAuthzWorld(t, s)
	rows := authzRows(w)
	for i := range rows {
		if rows[i].label == "" {
			rows[i].label = "`" + rows[i].op + "`"
		}
	}

	// The table covers the schema: every query and mutation has a row, and
	// every row names an operation of the schema.
	var schema struct {
		QueryType, MutationType struct{ Fields []struct{ Name string } }
	}
	s.must(s.gql(w.tokens[roleAdmin], `{ __schema { queryType { fields { name } } mutationType { fields { name } } } }`, nil), "__schema", &schema)
	ops := map[string]bool{}
	for _, f := range append(schema.QueryType.Fields, schema.MutationType.Fields...) {
		ops[f.Name] = true
	}
	covered := map[string]bool{}
	for _, r := range rows {
		if r.op == "" {
			continue // a REST route
		}
		if !ops[r.op] {
			t.Errorf("the matrix has a row for %s, which is not in the schema", r.op)
		}
		covered[r.op] = true
	}
	for op := range ops {
		if !covered[op] {
			t.Errorf("operation %s has no row in the authorization matrix: add one to authzRows", op)
		}
	}
	if t.Failed() {
		t.FailNow()
	}

	cells := 0
	for _, r := range rows {
		for _, role := range roles {
			t.Run(r.label+"/"+roleNames[role], func(t *testing.T) {
				s.t = t
				defer func() { s.t = w.t }()
				cells++
				var vars map[string]any
				if r.prep != nil {
					vars = r.prep(role)
				}
				refused := r.want[role] != ok
				var before map[string]int64
				if refused {
					before = w.quiet()
				}
				got, data := w.send(role, r, vars)
				if got != r.want[role] {
					t.Errorf("%s as %s: got %s, want %s", r.label, roleNames[role], got, r.want[role])
				}
				if refused && got != ok {
					if diff := w.written(before); len(diff) > 0 {
						t.Errorf("%s as %s was refused with %s but wrote %v", r.label, roleNames[role], got, diff)
					}
				}
				if got == ok && r.check != nil {
					r.check(role, data)
				}
			})
		}
	}
	t.Logf("%d operations and routes × %d callers = %d cells; rows written meanwhile: %v", len(rows), len(roles), cells, w.writes())

	table := authzTable(rows)
	path := filepath.Join("..", "..", "docs", "SECURITY.md")
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (the matrix is kept in docs/SECURITY.md)", err)
	}
	begin, end := "<!-- authz-matrix:begin -->\n", "<!-- authz-matrix:end -->"
	i, j := strings.Index(string(doc), begin), strings.Index(string(doc), end)
	if i < 0 || j < i {
		t.Fatalf("docs/SECURITY.md lacks the %q and %q markers", begin, end)
	}
	updated := string(doc[:i+len(begin)]) + table + string(doc[j:])
	if os.Getenv("BERTH_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(updated), 0o644); err != nil {
			t.Fatal(err)
		}
	} else if updated != string(doc) {
		t.Errorf("the authorization matrix in docs/SECURITY.md is out of date; run\n\tBERTH_UPDATE_DOCS=1 go test -run TestAuthorizationMatrix ./cmd/berth/\nThe table is:\n%s", table)
	}
}

type role int

const (
	roleAnonymous role = iota
	roleAPIKey
	roleOwner
	roleOther
	roleAdmin
)

var (
	roles     = []role{roleAnonymous, roleAPIKey, roleOwner, roleOther, roleAdmin}
	roleNames = []string{"anonymous", "API key", "customer (owner)", "another customer", "Admin"}
)

// ok is the outcome of a cell that succeeded.
const ok = "OK"

// authzRow is one operation (or REST route) of the matrix.
type authzRow struct {
	op    string // the schema field; "" for a REST route
	label string // as shown in the table
	query string // GraphQL, or "GET /path" for a REST route
	// prep returns the variables of one cell, creating what it needs
	// (a fresh object, when the operation consumes one).
	prep func(role) map[string]any
	want [5]string
	// note is shown after ✓ in the table.
	note [5]string
	// check, if set, inspects the data of a cell that succeeded.
	check func(role, json.RawMessage)
}

// authzWorld is the server with alice's objects and everyone's credentials.
type authzWorld struct {
	t      *testing.T
	s      *server
	db     *sql.DB
	tokens [5]string // bearer tokens by role ("" where none)
	apiKey string

	aliceSub, bobSub string
	flightID         string // a flight with plenty of seats
	booking          booking
	executionID      string // the processBooking execution of booking
	deadID           string // a dead-lettered execution
	seq              int
}

func newAuthzWorld(t *testing.T, s *server) *authzWorld {
	w := &authzWorld{t: t, s: s}
	w.tokens[roleOwner], w.tokens[roleOther], w.tokens[roleAdmin] = s.token("alice"), s.token("bob"), s.token("admin")
	w.apiKey = strings.TrimSpace(cli(t, "apikey", "create", "--name", "authz-matrix", "--data", s.data))
	var me struct{ Sub string }
	s.must(s.gql(w.tokens[roleOwner], `{ me { sub } }`, nil), "me", &me)
	w.aliceSub = me.Sub
	s.must(s.gql(w.tokens[roleOther], `{ me { sub } }`, nil), "me", &me)
	w.bobSub = me.Sub
	w.flightID = w.newFlight(1000)
	w.booking = w.confirmedBooking("tok_visa")
	var x struct{ ID string }
	s.must(s.gql(w.tokens[roleAdmin], `query($b: ID!) { bookingExecution(bookingId: $b) { id } }`, map[string]any{"b": w.booking.ID}), "bookingExecution", &x)
	w.executionID = x.ID

	// A dead letter: a confirmed booking whose refund keeps failing.
	dead := w.confirmedBooking("tok_refund_fail")
	if r := s.gql(w.tokens[roleOwner], `mutation($id: ID!) { cancelBooking(id: $id) { id } }`, map[string]any{"id": dead.ID}); r.code() != "UNAVAILABLE" {
		t.Fatalf("cancelling with a failing refund: %+v", r.Errors)
	}
	w.deadID = "cancel:" + dead.ID

	db, err := sql.Open("sqlite", "file:"+filepath.Join(s.data, "berth.db")+"?_pragma=busy_timeout(10000)")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	w.db = db
	w.countWrites()
	return w
}

func (w *authzWorld) next() int { w.seq++; return w.seq }

func (w *authzWorld) newFlight(seats int) string {
	var f flight
	w.s.must(w.s.gql(w.tokens[roleAdmin], `mutation($in: CreateFlightInput!) { createFlight(input: $in) { id } }`,
		map[string]any{"in": w.flightInput(seats)}), "createFlight", &f)
	return f.ID
}

func (w *authzWorld) flightInput(seats int) map[string]any {
	return map[string]any{"departureDate": "2027-05-01T08:00:00Z", "departureAirportCode": "LGW", "departureAirportName": "London Gatwick",
		"departureCity": "London", "departureLocale": "Europe/London", "arrivalDate": "2027-05-01T10:15:00Z", "arrivalAirportCode": "MAD",
		"arrivalAirportName": "Madrid Barajas", "arrivalCity": "Madrid", "arrivalLocale": "Europe/Madrid", "ticketPrice": 10000,
		"ticketCurrency": "EUR", "flightNumber": 5000 + w.next(), "seatCapacity": seats}
}

func (w *authzWorld) confirmedBooking(card string) booking {
	alice := w.tokens[roleOwner]
	b := w.s.waitBooking(alice, w.s.book(alice, w.flightID, w.s.charge(alice, 10000, card)).ID)
	if b.Status != "CONFIRMED" {
		w.t.Fatalf("booking: %+v", b)
	}
	return b
}

func (w *authzWorld) adminBooking() string {
	var b booking
	w.s.must(w.s.gql(w.tokens[roleAdmin], `mutation($in: CreateBookingInput!) { createBooking(input: $in) { id } }`,
		map[string]any{"in": map[string]any{"bookingOutboundFlightId": w.flightID, "paymentToken": "none", "status": "CONFIRMED", "customer": w.aliceSub}}),
		"createBooking", &b)
	return b.ID
}

func (w *authzWorld) webhook() string {
	var h struct{ ID string }
	w.s.must(w.s.gql(w.tokens[roleAdmin], `mutation { registerWebhook(url: "http://127.0.0.1:9/hook", eventTypes: ["NoSuchEvent"]) { id } }`, nil),
		"registerWebhook", &h)
	return h.ID
}

// send runs a row as role and returns the outcome (ok or the error code)
// and the data of the operation.
func (w *authzWorld) send(role role, r authzRow, vars map[string]any) (string, json.RawMessage) {
	w.s.t.Helper()
	if path, isREST := strings.CutPrefix(r.query, "GET "); isREST {
		req, _ := http.NewRequest(http.MethodGet, w.s.url+path, nil)
		w.credentials(role, req.Header)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			w.s.t.Fatalf("GET %s: %v", path, err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		if resp.StatusCode == http.StatusOK {
			return ok, b
		}
		var e struct{ Error struct{ Code string } }
		_ = json.Unmarshal(b, &e)
		return fmt.Sprintf("%d %s", resp.StatusCode, e.Error.Code), b
	}
	var headers []string
	if role == roleAPIKey {
		headers = []string{"x-api-key", w.apiKey}
	}
	resp := w.s.gql(w.tokens[role], r.query, vars, headers...)
	if len(resp.Errors) > 0 {
		return resp.code(), nil
	}
	return ok, resp.Data[r.op]
}

func (w *authzWorld) credentials(role role, h http.Header) {
	switch {
	case role == roleAPIKey:
		h.Set("x-api-key", w.apiKey)
	case w.tokens[role] != "":
		h.Set("Authorization", "Bearer "+w.tokens[role])
	}
}

// countWrites installs triggers that count the rows written to every
// table, so that a cell can tell whether a refused request wrote.
func (w *authzWorld) countWrites() {
	tables, err := w.strings(`SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' AND name NOT LIKE 'goose%'`)
	if err != nil {
		w.t.Fatal(err)
	}
	stmts := []string{`CREATE TABLE zz_writes (tbl TEXT PRIMARY KEY, n BIGINT NOT NULL DEFAULT 0)`}
	for _, t := range tables {
		stmts = append(stmts, `INSERT INTO zz_writes (tbl) VALUES ('`+t+`')`)
		for _, ev := range []string{"INSERT", "UPDATE", "DELETE"} {
			stmts = append(stmts, `CREATE TRIGGER zz_writes_`+t+`_`+ev+` AFTER `+ev+` ON `+t+` BEGIN UPDATE zz_writes SET n = n + 1 WHERE tbl = '`+t+`'; END`)
		}
	}
	for _, st := range stmts {
		if _, err := w.db.Exec(st); err != nil {
			w.t.Fatalf("%s: %v", st, err)
		}
	}
}

func (w *authzWorld) strings(q string) ([]string, error) {
	rows, err := w.db.Query(q)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		out = append(out, s)
	}
	return out, rows.Err()
}

func (w *authzWorld) writes() map[string]int64 {
	rows, err := w.db.Query(`SELECT tbl, n FROM zz_writes`)
	if err != nil {
		w.t.Fatal(err)
	}
	defer rows.Close()
	out := map[string]int64{}
	for rows.Next() {
		var t string
		var n int64
		if err := rows.Scan(&t, &n); err != nil {
			w.t.Fatal(err)
		}
		out[t] = n
	}
	return out
}

// quiet waits until no saga runs and nothing is being written, and returns
// the write counts.
func (w *authzWorld) quiet() map[string]int64 {
	deadline := time.Now().Add(60 * time.Second)
	prev := w.writes()
	for {
		time.Sleep(30 * time.Millisecond)
		var running int
		if err := w.db.QueryRow(`SELECT count(*) FROM executions WHERE status = 'RUNNING'`).Scan(&running); err != nil {
			w.t.Fatal(err)
		}
		cur := w.writes()
		if running == 0 && fmt.Sprint(cur) == fmt.Sprint(prev) {
			return cur
		}
		if time.Now().After(deadline) {
			w.t.Fatalf("the server did not go quiet: %d executions running", running)
		}
		prev = cur
	}
}

// written lists the tables written to since before.
func (w *authzWorld) written(before map[string]int64) []string {
	var out []string
	for k, v := range w.writes() {
		if before[k] != v {
			out = append(out, fmt.Sprintf("%s (%d rows)", k, v-before[k]))
		}
	}
	slices.Sort(out)
	return out
}

// authzRows is the matrix: one row per operation of the schema and per
// REST route.
func authzRows(w *authzWorld) []authzRow {
	const (
		unauth    = "UNAUTHENTICATED"
		forbidden = "FORBIDDEN"
		notFound  = "NOT_FOUND"
		invalid   = "INVALID"
	)
	reader := [5]string{unauth, ok, ok, ok, ok}
	user := [5]string{unauth, forbidden, ok, ok, ok}
	ownerOnly := [5]string{unauth, forbidden, ok, notFound, ok}
	adminOnly := [5]string{unauth, forbidden, forbidden, forbidden, ok}
	public := [5]string{ok, ok, ok, ok, ok}
	s := w.s
	flight := func(role) map[string]any { return map[string]any{"id": w.flightID} }
	alicesBooking := func(role) map[string]any { return map[string]any{"id": w.booking.ID} }
	alice := func(role) map[string]any { return map[string]any{"c": w.aliceSub} }
	// bookings decodes a page and reports whether it holds alice's
	// booking and someone else's.
	bookings := func(data json.RawMessage) (hasAlices, hasOthers bool) {
		var p struct{ Items []booking }
		if err := json.Unmarshal(data, &p); err != nil {
			w.t.Fatal(err)
		}
		for _, b := range p.Items {
			if b.Customer == w.aliceSub {
				hasAlices = true
			} else {
				hasOthers = true
			}
		}
		return
	}
	wantBookings := func(role role, data json.RawMessage, alices, others bool) {
		a, o := bookings(data)
		if a != alices || o != others {
			s.t.Errorf("as %s: alice's bookings listed %v (want %v), others' %v (want %v)", roleNames[role], a, alices, o, others)
		}
	}
	rest := func(path string) authzRow {
		return authzRow{label: "`GET " + path + "`", query: "GET " + path, want: public}
	}
	return []authzRow{
		// Flights: readers.
		{op: "getFlight", query: `query($id: ID!) { getFlight(id: $id) { id } }`, prep: flight, want: reader},
		{op: "listFlights", query: `{ listFlights { items { id } } }`, want: reader},
		{op: "getFlightBySchedule", query: `{ getFlightBySchedule(departureAirportCode: "LGW") { items { id } } }`, want: reader},
		// Bookings: their owner and Admin.
		{op: "getBooking", query: `query($id: ID!) { getBooking(id: $id) { id customer } }`, prep: alicesBooking, want: ownerOnly},
		{op: "listBookings", query: `{ listBookings(limit: 1000) { items { id customer } } }`, want: user,
			note: [5]string{roleOwner: "own", roleOther: "own only", roleAdmin: "everyone's"},
			check: func(role role, data json.RawMessage) {
				switch role {
				case roleOwner:
					wantBookings(role, data, true, false)
				case roleOther:
					wantBookings(role, data, false, false)
				case roleAdmin:
					a, _ := bookings(data)
					if !a {
						s.t.Errorf("Admin does not see alice's bookings")
					}
				}
			}},
		{op: "getBookingByStatus", label: "`getBookingByStatus(customer: owner)`", query: `query($c: String) { getBookingByStatus(customer: $c) { items { id customer } } }`,
			prep: alice, want: user, note: [5]string{roleOwner: "own", roleOther: "empty page", roleAdmin: "anyone's"},
			check: func(role role, data json.RawMessage) { wantBookings(role, data, role != roleOther, false) }},
		{op: "getLoyalty", label: "`getLoyalty(customer: owner)`", query: `query($c: String) { getLoyalty(customer: $c) { points } }`, prep: alice,
			want: [5]string{unauth, forbidden, ok, forbidden, ok}, note: [5]string{roleAdmin: "anyone's"}},
		{op: "me", query: `{ me { sub } }`, want: public, note: [5]string{roleAnonymous: "null", roleAPIKey: "the key"},
			check: func(role role, data json.RawMessage) {
				var me *struct{ Sub string }
				_ = json.Unmarshal(data, &me)
				switch {
				case role == roleAnonymous && me != nil, role == roleAPIKey && (me == nil || !strings.HasPrefix(me.Sub, "apikey:")),
					role == roleOwner && (me == nil || me.Sub != w.aliceSub):
					s.t.Errorf("me as %s: %s", roleNames[role], data)
				}
			}},
		// Operators: Admin only.
		{op: "bookingExecution", query: `query($id: ID!) { bookingExecution(bookingId: $id) { id status history { type } } }`, prep: alicesBooking, want: adminOnly},
		{op: "execution", query: `query($id: ID!) { execution(id: $id) { id history { type } } }`, prep: func(role) map[string]any { return map[string]any{"id": w.executionID} },
			want: adminOnly},
		{op: "deadLetters", query: `{ deadLetters { items { id } } }`, want: adminOnly},
		{op: "webhooks", query: `{ webhooks { id url } }`, want: adminOnly},
		// Flights: Admin changes them.
		{op: "createFlight", query: `mutation($in: CreateFlightInput!) { createFlight(input: $in) { id } }`,
			prep: func(role) map[string]any { return map[string]any{"in": w.flightInput(10)} }, want: adminOnly},
		{op: "updateFlight", query: `mutation($id: ID!) { updateFlight(input: {id: $id, departureCity: "London (LGW)"}) { id } }`, prep: flight, want: adminOnly},
		{op: "deleteFlight", query: `mutation($id: ID!) { deleteFlight(input: {id: $id}) { id } }`,
			prep: func(role) map[string]any { return map[string]any{"id": w.newFlight(10)} }, want: adminOnly},
		// Money and bookings.
		{op: "createCharge", query: `mutation { createCharge(amount: 10000, currency: "EUR", token: "tok_visa") { id } }`, want: user,
			note: [5]string{roleOwner: "their own", roleOther: "their own", roleAdmin: "their own"}},
		{op: "processBooking", label: "`processBooking(paymentToken: owner's charge)`",
			query: `mutation($f: ID!, $c: String!) { processBooking(input: {bookingOutboundFlightId: $f, paymentToken: $c}) { id customer status } }`,
			prep: func(role) map[string]any {
				return map[string]any{"f": w.flightID, "c": s.charge(w.tokens[roleOwner], 10000, "tok_visa")}
			},
			want: [5]string{unauth, forbidden, ok, invalid, invalid}, note: [5]string{roleOwner: "UNCONFIRMED, theirs"},
			check: func(role role, data json.RawMessage) {
				var b booking
				_ = json.Unmarshal(data, &b)
				if b.Customer != w.aliceSub || b.Status != "UNCONFIRMED" {
					s.t.Errorf("processBooking: %s", data)
				}
				s.waitBooking(w.tokens[roleOwner], b.ID)
			}},
		{op: "cancelBooking", query: `mutation($id: ID!) { cancelBooking(id: $id) { id status } }`,
			prep: func(role) map[string]any { return map[string]any{"id": w.confirmedBooking("tok_visa").ID} }, want: ownerOnly,
			check: func(role role, data json.RawMessage) {
				var b booking
				_ = json.Unmarshal(data, &b)
				if b.Status != "CANCELLED" {
					s.t.Errorf("cancelBooking as %s: %s", roleNames[role], data)
				}
			}},
		{op: "createBooking", query: `mutation($f: ID!, $c: String) { createBooking(input: {bookingOutboundFlightId: $f, paymentToken: "none", status: CONFIRMED, customer: $c}) { id } }`,
			prep: func(role) map[string]any { return map[string]any{"f": w.flightID, "c": w.aliceSub} }, want: adminOnly},
		{op: "updateBooking", query: `mutation($id: ID!) { updateBooking(input: {id: $id, checkedIn: true}) { id checkedIn } }`, prep: alicesBooking, want: adminOnly},
		{op: "deleteBooking", query: `mutation($id: ID!) { deleteBooking(input: {id: $id}) { id } }`,
			prep: func(role) map[string]any { return map[string]any{"id": w.adminBooking()} }, want: adminOnly},
		// Identity: anyone.
		{op: "signUp", query: `mutation($u: String!) { signUp(username: $u, password: "a long password") { sub } }`,
			prep: func(role) map[string]any { return map[string]any{"u": fmt.Sprintf("matrix-%d", w.next())} }, want: public},
		{op: "signIn", query: `mutation { signIn(username: "alice", password: "alice-password") { accessToken } }`, want: public},
		// Operators: Admin only.
		{op: "registerWebhook", query: `mutation { registerWebhook(url: "http://127.0.0.1:9/hook", eventTypes: ["NoSuchEvent"]) { id secret } }`, want: adminOnly},
		{op: "deleteWebhook", query: `mutation($id: ID!) { deleteWebhook(id: $id) { id } }`,
			prep: func(role) map[string]any { return map[string]any{"id": w.webhook()} }, want: adminOnly},
		{op: "redriveExecution", query: `mutation($id: ID!) { redriveExecution(id: $id) { id status } }`,
			prep: func(role) map[string]any { return map[string]any{"id": w.deadID} }, want: adminOnly},
		// REST routes: public (docs/SECURITY.md explains /metrics).
		rest("/healthz"), rest("/readyz"), rest("/metrics"), rest("/.well-known/jwks.json"), rest("/graphiql/"),
		{label: "any other route", query: "GET /nope", want: [5]string{"404 NOT_FOUND", "404 NOT_FOUND", "404 NOT_FOUND", "404 NOT_FOUND", "404 NOT_FOUND"}},
	}
}

// authzTable renders the rows as Markdown.
func authzTable(rows []authzRow) string {
	var b strings.Builder
	b.WriteString("| operation |")
	for _, n := range roleNames {
		b.WriteString(" " + n + " |")
	}
	b.WriteString("\n|---|---|---|---|---|---|\n")
	for _, r := range rows {
		b.WriteString("| " + r.label + " |")
		for role := range roles {
			cell := r.want[role]
			if cell == ok {
				cell = "✓"
				if r.note[role] != "" {
					cell += " " + r.note[role]
				}
			}
			b.WriteString(" " + cell + " |")
		}
		b.WriteString("\n")
	}
	return b.String()
}
