package graphql

import (
	"bytes"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// Fuzz targets for hostile input. Short runs are in .ci/run; long ones are
// described in docs/SECURITY.md:
//
//	go test -run '^$' -fuzz '^FuzzProcessBooking$' -fuzztime 10m ./graphql/
//
// The variables targets send the fuzzer's bytes as the variables of one
// operation to the real handler on SQLite (the saga engine stopped, so
// that only the request writes). Every answer must be a GraphQL response
// below 500 whose errors all carry extensions.code, never INTERNAL; a query
// writes nothing, nor does a mutation that failed. In the variables,
// $FLIGHT stands for a real flight's id and $CHARGE for a fresh authorized
// charge of the caller, so that the fuzzer reaches the paths past "not
// found". Seeds: testdata/fuzz/<target>/.

const (
	fuzzProcessBooking = `mutation($in: CreateBookingInput!) { processBooking(input: $in) { id status customer paymentToken bookingReference outboundFlight { id } } }`
	fuzzListFlights    = `query($f: ModelFlightFilterInput, $l: Int, $t: String) { listFlights(filter: $f, limit: $l, nextToken: $t) { items { id flightNumber } nextToken } }`
	fuzzSchedule       = `query($d: String, $k: ModelFlightByDepartureScheduleCompositeKeyConditionInput, $s: ModelSortDirection, $f: ModelFlightFilterInput, $l: Int, $t: String) {
		getFlightBySchedule(departureAirportCode: $d, arrivalAirportCodeDepartureDate: $k, sortDirection: $s, filter: $f, limit: $l, nextToken: $t) { items { id } nextToken } }`
	fuzzCreateFlight = `mutation($in: CreateFlightInput!) { createFlight(input: $in) { ` + flightFields + ` } }`
	fuzzCreateCharge = `mutation($a: Int!, $c: String!, $t: String!, $k: String) { createCharge(amount: $a, currency: $c, token: $t, idempotencyKey: $k) { id amount currency status } }`
)

// fuzzStack is the stack a fuzz target shares between its inputs.
type fuzzStack struct {
	*stack
	raw    *rawDB
	flight flight
}

func newFuzzStack(f *testing.F) *fuzzStack {
	url := "sqlite:" + f.TempDir() + "/fuzz.db"
	s := newHostileStack(f, url, false)
	fs := &fuzzStack{stack: s, raw: openRaw(f, url)}
	fs.flight = fs.createFlightNow(f)
	return fs
}

// createFlightNow creates the flight the seeds book, outside any input.
func (fs *fuzzStack) createFlightNow(f *testing.F) flight {
	body, _ := json.Marshal(map[string]any{"query": `mutation($in: CreateFlightInput!) { createFlight(input: $in) { ` + flightFields + ` } }`,
		"variables": map[string]any{"in": flightInput(1, "2027-03-01T08:00:00Z", "LGW", "MAD", 100000)}})
	rec := fs.serve(asAdmin, body)
	var r struct {
		Data struct{ CreateFlight flight }
	}
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil || r.Data.CreateFlight.ID == "" {
		f.Fatalf("createFlight: %s", rec.Body)
	}
	return r.Data.CreateFlight
}

func (fs *fuzzStack) serve(actor string, body []byte) *httptest.ResponseRecorder {
	req := httptest.NewRequest(http.MethodPost, "/graphql", bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("X-Test-Actor", actor)
	rec := httptest.NewRecorder()
	fs.h.ServeHTTP(rec, req)
	return rec
}

// fuzzResult is what one input did.
type fuzzResult struct {
	resp   *response
	wrote  []string // tables written to, with the number of rows
	failed bool     // the operation returned errors
}

// run sends query with the variables text vars as actor and checks the
// answer's shape.
func (fs *fuzzStack) run(t *testing.T, actor, query string, vars []byte) fuzzResult {
	t.Helper()
	fs.t = t
	v := bytes.ReplaceAll(vars, []byte("$FLIGHT"), []byte(fs.flight.ID))
	if bytes.Contains(v, []byte("$CHARGE")) {
		v = bytes.ReplaceAll(v, []byte("$CHARGE"), []byte(fs.charge(actor, 100000, "tok_visa")))
	}
	q, _ := json.Marshal(query)
	body := append(append(append([]byte(`{"query":`), q...), `,"variables":`...), v...)
	body = append(body, '}')

	before := fs.raw.writes(t)
	rec := fs.serve(actor, body)
	after := fs.raw.writes(t)
	r := &response{Status: rec.Code, raw: rec.Body.String()}
	if rec.Code >= 500 {
		t.Fatalf("status %d: %s", rec.Code, rec.Body)
	}
	if err := json.Unmarshal(rec.Body.Bytes(), r); err != nil {
		t.Fatalf("status %d, not a GraphQL response: %v: %s", rec.Code, err, rec.Body)
	}
	if len(r.Errors) == 0 && rec.Code != http.StatusOK {
		t.Fatalf("status %d without errors: %s", rec.Code, rec.Body)
	}
	for _, e := range r.Errors {
		switch e.code() {
		case "":
			t.Fatalf("an error without extensions.code: %s", rec.Body)
		case berth.EINTERNAL, berth.EUNAVAILABLE, berth.ETIMEOUT:
			t.Fatalf("%s: %s\nlogs:\n%s", e.code(), rec.Body, fs.logs)
		}
	}
	if l := fs.logs.String(); strings.Contains(l, "panic") || strings.Contains(l, "internal error") {
		t.Fatalf("logged:\n%s", l)
	}
	return fuzzResult{resp: r, wrote: changed(before, after), failed: len(r.Errors) > 0}
}

// mustNotWrite fails t if a query wrote, or a failed mutation did.
func (res fuzzResult) mustNotWrite(t *testing.T, what string) {
	t.Helper()
	if len(res.wrote) > 0 {
		t.Fatalf("%s wrote %v: %s", what, res.wrote, res.resp.raw)
	}
}

// fuzzSeeds adds seeds the testdata corpus also holds, so that a plain
// go test runs them even without it.
func fuzzSeeds(f *testing.F, seeds ...string) {
	for _, s := range seeds {
		f.Add([]byte(s))
	}
}

func FuzzProcessBooking(f *testing.F) {
	fuzzSeeds(f,
		`{"in": {"bookingOutboundFlightId": "$FLIGHT", "paymentToken": "$CHARGE"}}`,
		`{"in": {"bookingOutboundFlightId": "$FLIGHT", "paymentToken": "$CHARGE", "idempotencyKey": "k'--", "customer": "bob", "status": "CONFIRMED", "id": "x", "bookingReference": "ABC"}}`,
		`{"in": {"bookingOutboundFlightId": "$FLIGHT", "paymentToken": "ch_0000"}}`,
		`{"in": {"bookingOutboundFlightId": "'; DROP TABLE bookings; --", "paymentToken": "$CHARGE"}}`,
		`{"in": {"bookingOutboundFlightId": 5, "paymentToken": null}}`,
		`{"in": {"bookingOutboundFlightId": "$FLIGHT", "paymentToken": "$CHARGE", "idempotencyKey": "\u0000"}}`,
		`{"in": []}`, `{}`, `[]`, `null`, `{"in": {"bookingOutboundFlightId": "$FLIGHT", "paymentToken": "$CHARGE", "extra": 1}}`,
	)
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, vars []byte) {
		res := fs.run(t, asAlice, fuzzProcessBooking, vars)
		if res.failed {
			res.mustNotWrite(t, "a failed processBooking")
			return
		}
		var b booking
		if err := json.Unmarshal(res.resp.Data["processBooking"], &b); err != nil {
			t.Fatal(err)
		}
		// Identity and status never come from the input.
		if b.Customer == nil || *b.Customer != asAlice || b.Status != "UNCONFIRMED" || b.BookingReference != nil || b.OutboundFlight == nil || b.OutboundFlight.ID != fs.flight.ID {
			t.Fatalf("booked %+v from %s", b, vars)
		}
	})
}

func FuzzListFlights(f *testing.F) {
	fuzzSeeds(f,
		`{"f": {"seatCapacity": {"gt": 0}}}`,
		`{"f": {"departureAirportCode": {"eq": "LGW"}, "or": [{"flightNumber": {"between": [1, 10]}}, {"not": {"arrivalCity": {"contains": "'"}}}]}, "l": 10}`,
		`{"f": {"id": {"beginsWith": "0"}, "ticketPrice": {"ge": -9223372036854775808}}, "l": 1000}`,
		`{"f": {"departureDate": {"between": ["2027", "2028"]}, "and": [{"ticketCurrency": {"attributeExists": true}}]}}`,
		`{"f": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"flightNumber": {"eq": 1}}}}}}}}}}}}`,
		`{"t": "WyIiLCIwMWEyIl0", "l": 1}`, `{"t": "!!!"}`, `{"l": 0}`, `{"l": 2147483648}`, `{"f": {"nope": {"eq": 1}}}`,
		`{"f": {"flightNumber": {"between": [1]}}}`, `{"f": {"departureCity": {"eq": "a\u0000b"}}}`,
	)
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, vars []byte) {
		fs.run(t, asAPIKey, fuzzListFlights, vars).mustNotWrite(t, "listFlights")
	})
}

func FuzzGetFlightBySchedule(f *testing.F) {
	fuzzSeeds(f,
		`{"d": "LGW"}`,
		`{"d": "LGW", "k": {"eq": {"arrivalAirportCode": "MAD", "departureDate": "2027-03-01T08:00:00Z"}}}`,
		`{"d": "LGW", "k": {"beginsWith": {"arrivalAirportCode": "MAD", "departureDate": "2027-03"}}, "s": "DESC", "l": 5}`,
		`{"d": "LGW", "k": {"between": [{"arrivalAirportCode": "AAA"}, {"arrivalAirportCode": "ZZZ", "departureDate": "9"}]}}`,
		`{"d": "LGW", "k": {"gt": {"arrivalAirportCode": "MAD", "departureDate": ""}}, "f": {"seatCapacity": {"gt": 0}}}`,
		`{"d": "LGW", "k": {"lt": {"departureDate": "2028"}, "le": {"departureDate": "2028"}}}`,
		`{"d": "LGW", "k": {"between": [null, null]}}`, `{"d": ""}`, `{"d": "LGWX"}`, `{}`,
		`{"d": "LGW", "t": "WyIyMDI3IiwiIl0", "s": "ASC"}`,
	)
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, vars []byte) {
		fs.run(t, asAlice, fuzzSchedule, vars).mustNotWrite(t, "getFlightBySchedule")
	})
}

func FuzzCreateFlight(f *testing.F) {
	seed := func(kv ...any) string {
		b, _ := json.Marshal(map[string]any{"in": flightInput(7, "2027-04-01T08:00:00Z", "LGW", "MAD", 10, kv...)})
		return string(b)
	}
	fuzzSeeds(f,
		seed(), seed("seatAllocation", 20), seed("departureAirportName", "O'Hare; --"), seed("id", "0190f3c4-0000-7000-8000-000000000000"),
		seed("arrivalDate", "2027-04-01T07:00:00Z"), seed("ticketPrice", -1), seed("seatCapacity", 100001), seed("ticketCurrency", "eur"),
		seed("departureDate", "2027-04-01T08:00+0100"), seed("flightNumber", 0), seed("arrivalAirportCode", "LGW"), seed("departureCity", strings.Repeat("x", 201)),
		`{"in": {}}`, `{"in": null}`,
	)
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, vars []byte) {
		res := fs.run(t, asAdmin, fuzzCreateFlight, vars)
		if res.failed {
			res.mustNotWrite(t, "a failed createFlight")
			return
		}
		var got flight
		if err := json.Unmarshal(res.resp.Data["createFlight"], &got); err != nil {
			t.Fatal(err)
		}
		// What was stored reads back the same, within the rules.
		back := fs.run(t, asAlice, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, []byte(`{"id": "`+got.ID+`"}`))
		var stored flight
		_ = json.Unmarshal(back.resp.Data["getFlight"], &stored)
		a, _ := json.Marshal(got)
		b, _ := json.Marshal(stored)
		if !bytes.Equal(a, b) || got.SeatAllocation == nil || got.SeatCapacity > *got.SeatAllocation || got.SeatCapacity < 0 || got.TicketPrice < 0 || got.FlightNumber <= 0 {
			t.Fatalf("created %+v, read back %+v", got, stored)
		}
	})
}

func FuzzCreateCharge(f *testing.F) {
	fuzzSeeds(f,
		`{"a": 10000, "c": "EUR", "t": "tok_visa"}`,
		`{"a": 10000, "c": "eur ", "t": "tok_visa", "k": "key-1"}`,
		`{"a": 10000, "c": "EUR", "t": "tok_chargeDeclined"}`,
		`{"a": 10000, "c": "EUR", "t": "tok_nope"}`,
		`{"a": 0, "c": "EUR", "t": "tok_visa"}`, `{"a": -1, "c": "EUR", "t": "tok_visa"}`,
		`{"a": 9223372036854775807, "c": "EUR", "t": "tok_visa"}`, `{"a": 1.5, "c": "EUR", "t": "tok_visa"}`,
		`{"a": 1, "c": "€€€", "t": "tok_visa"}`, `{"a": 1, "c": "EUR", "t": ""}`, `{"a": 1, "c": "EUR", "t": "tok_visa", "k": "\u0000"}`,
	)
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, vars []byte) {
		res := fs.run(t, asAlice, fuzzCreateCharge, vars)
		if !res.failed {
			var c struct {
				Amount           int
				Currency, Status string
			}
			_ = json.Unmarshal(res.resp.Data["createCharge"], &c)
			if c.Amount <= 0 || c.Status != "AUTHORIZED" || !berth.IsCurrency(c.Currency) {
				t.Fatalf("charge %+v from %s", c, vars)
			}
			// A replayed key answers only the request it was made for.
			var req map[string]json.RawMessage
			var amount int64
			var currency string
			if json.Unmarshal(vars, &req) == nil && json.Unmarshal(req["a"], &amount) == nil && json.Unmarshal(req["c"], &currency) == nil {
				if int64(c.Amount) != amount || c.Currency != strings.ToUpper(strings.TrimSpace(currency)) {
					t.Fatalf("asked for %d %q, got the charge %+v", amount, currency, c)
				}
			}
			return
		}
		// The provider's refusals are kept as FAILED charges (the audit
		// trail); every other refusal writes nothing.
		e := res.resp.Errors[0]
		if e.code() == berth.EPAYMENTDECLINED || strings.Contains(e.Message, "unknown card token") {
			for _, w := range res.wrote {
				if !strings.HasPrefix(w, "charges:") && !strings.HasPrefix(w, "kv:") {
					t.Fatalf("a refused charge wrote %v", res.wrote)
				}
			}
			return
		}
		res.mustNotWrite(t, "a failed createCharge")
	})
}

// FuzzNextToken: the nextToken decoder never panics, refuses with INVALID,
// and round-trips what it accepts; the list queries answer any token with
// a page or INVALID.
func FuzzNextToken(f *testing.F) {
	for _, s := range []string{"", "WyIiLCIiXQ", "WyIyMDI3LTAzLTAxVDA4OjAwOjAwWiIsIjAxYTIiXQ", "!!!", "W10", "bnVsbA", "WyJhIiwiYiIsImMiXQ",
		"eyJhIjoxfQ", "WyIiXQ", "WzEsMl0", strings.Repeat("A", 600), "Wy", "WyIn", "WyJcdTAwMDAiLCIiXQ"} {
		f.Add(s)
	}
	fs := newFuzzStack(f)
	f.Fuzz(func(t *testing.T, token string) {
		c, err := airline.DecodeToken(token)
		if err != nil {
			if berth.ErrorCode(err) != berth.EINVALID {
				t.Fatalf("DecodeToken(%q): %v", token, err)
			}
		} else {
			again, err := airline.DecodeToken(*airline.EncodeToken(c))
			if err != nil || *again != *c {
				t.Fatalf("round trip of %q: %+v → %+v, %v", token, c, again, err)
			}
		}
		vars, _ := json.Marshal(map[string]any{"t": token})
		for _, q := range []string{
			`query($t: String) { listFlights(nextToken: $t) { items { id } nextToken } }`,
			`query($t: String) { getFlightBySchedule(departureAirportCode: "LGW", nextToken: $t) { items { id } nextToken } }`,
			`query($t: String) { listBookings(nextToken: $t) { items { id } nextToken } }`,
			`query($t: String) { getBookingByStatus(nextToken: $t) { items { id } nextToken } }`,
			`query($t: String) { deadLetters(nextToken: $t) { items { id } nextToken } }`,
		} {
			res := fs.run(t, asAdmin, q, vars)
			res.mustNotWrite(t, "a list query")
			if res.failed && res.resp.code() != berth.EINVALID {
				t.Fatalf("nextToken %q: %s", token, res.resp.raw)
			}
		}
	})
}

// FuzzFilter: converting an Amplify filter (flight and booking) never
// panics; it succeeds or refuses with INVALID, and a converted filter
// validates and evaluates on a record without panicking.
func FuzzFilter(f *testing.F) {
	for _, s := range []string{
		`{"seatCapacity": {"gt": 0}}`,
		`{"and": [{"flightNumber": {"between": [1, 2]}}, null], "or": [], "not": {"departureCity": {"contains": ""}}}`,
		`{"id": {"between": ["a"]}, "status": {"eq": "CONFIRMED"}}`,
		`{"checkedIn": {"ne": true, "attributeExists": false}, "customer": {"beginsWith": "a"}}`,
		`{"ticketPrice": {"between": [null, 1]}}`,
		`{"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {"not": {}}}}}}}}}}}`,
		`{"or": [{"or": [{"or": [{"bookingReference": {"le": "Z", "lt": "Z", "ge": "A", "gt": "A", "ne": "B"}}]}]}]}`,
		`{"departureDate": {"eq": null, "between": []}}`, `[]`, `null`, `{"seatCapacity": {"eq": 1e30}}`,
	} {
		f.Add([]byte(s))
	}
	fl := &berth.Flight{Resource: berth.Resource{ID: "f1", Capacity: 10, Available: 3, Price: 100, Currency: "EUR"}, FlightNumber: 1,
		DepartureDate: "2027-01-01T08:00:00Z", DepartureAirportCode: "LGW", ArrivalAirportCode: "MAD", DepartureCity: "London"}
	bk := &berth.Booking{ID: "b1", ResourceID: "f1", Customer: "alice", Status: berth.BookingConfirmed, Reference: "ABC123", PaymentToken: "ch_1"}
	f.Fuzz(func(t *testing.T, data []byte) {
		var fin generated.ModelFlightFilterInput
		if json.Unmarshal(data, &fin) == nil {
			checkFilter(t, "flight", func() (*airline.Filter, error) { return flightFilter(&fin) }, airline.FlightFields, func(name string) any {
				return flightValue(fl, name)
			})
		}
		var bin generated.ModelBookingFilterInput
		if json.Unmarshal(data, &bin) == nil {
			checkFilter(t, "booking", func() (*airline.Filter, error) { return bookingFilter(&bin) }, airline.BookingFields, func(name string) any {
				switch name {
				case "id":
					return bk.ID
				case "status":
					return string(bk.Status)
				case "customer":
					return bk.Customer
				case "bookingReference":
					return bk.Reference
				case "checkedIn":
					return bk.CheckedIn
				}
				return nil
			})
		}
	})
}

func checkFilter(t *testing.T, kind string, convert func() (*airline.Filter, error), fields map[string]bool, get func(string) any) {
	t.Helper()
	flt, err := convert()
	if err != nil {
		if berth.ErrorCode(err) != berth.EINVALID {
			t.Fatalf("%s filter: %v", kind, err)
		}
		return
	}
	if err := flt.Validate(fields); err != nil && berth.ErrorCode(err) != berth.EINVALID {
		t.Fatalf("%s filter validation: %v", kind, err)
	} else if err == nil {
		flt.Match(get)
	}
}

// flightValue returns a flight's field as the airline service's filters
// see it (strings, int64s).
func flightValue(f *berth.Flight, name string) any {
	switch name {
	case "id":
		return f.ID
	case "departureDate":
		return f.DepartureDate
	case "departureAirportCode":
		return f.DepartureAirportCode
	case "arrivalAirportCode":
		return f.ArrivalAirportCode
	case "departureCity":
		return f.DepartureCity
	case "ticketPrice":
		return f.Price
	case "ticketCurrency":
		return f.Currency
	case "flightNumber":
		return int64(f.FlightNumber)
	case "seatAllocation":
		return int64(f.Capacity)
	case "seatCapacity":
		return int64(f.Available)
	}
	return ""
}
