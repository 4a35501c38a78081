package graphql

import (
	"net/http"
	"slices"
	"testing"
)

func TestFlightMutationsNeedAdmin(t *testing.T) {
	t.Parallel()
	s := setup(t)
	f := s.createFlight(flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 100, "seatAllocation", 120))
	if f.ID == "" || f.SeatCapacity != 100 || f.SeatAllocation == nil || *f.SeatAllocation != 120 || f.TicketPrice != 10000 {
		t.Fatalf("createFlight: %+v", f)
	}
	create := `mutation($in: CreateFlightInput!) { createFlight(input: $in) { id } }`
	vars := map[string]any{"in": flightInput(2, "2026-12-01T09:00:00Z", "LGW", "MAD", 10)}
	for _, c := range []struct{ actor, code string }{
		{asAlice, "FORBIDDEN"}, {asAPIKey, "FORBIDDEN"}, {asAnonymous, "UNAUTHENTICATED"},
	} {
		r := s.gql(c.actor, create, vars)
		s.wantError(r, http.StatusOK, c.code)
		if string(r.Data["createFlight"]) != "null" {
			t.Fatalf("%s: createFlight = %s", c.actor, r.Data["createFlight"])
		}
	}
	// A service rule: INVALID with the service's message.
	bad := flightInput(3, "2026-12-01T08:00:00Z", "LGW", "LGW", 10)
	if e := s.wantError(s.gql(asAdmin, create, map[string]any{"in": bad}), http.StatusOK, "INVALID"); e.Message != "departure and arrival airports must differ" {
		t.Fatalf("message %q", e.Message)
	}

	// updateFlight: seatAllocation moves the seats for sale.
	r := s.gql(asAdmin, `mutation($in: UpdateFlightInput!) { updateFlight(input: $in) { `+flightFields+` } }`,
		map[string]any{"in": map[string]any{"id": f.ID, "seatAllocation": 150, "ticketPrice": 12000, "flightNumber": 7}})
	u := must[flight](s, r, "updateFlight")
	if u.SeatCapacity != 130 || *u.SeatAllocation != 150 || u.TicketPrice != 12000 || u.FlightNumber != 7 {
		t.Fatalf("updateFlight: %+v", u)
	}
	s.wantError(s.gql(asBob, `mutation { updateFlight(input: {id: "`+f.ID+`", flightNumber: 8}) { id } }`, nil), http.StatusOK, "FORBIDDEN")

	// getFlight for readers (an API key included); NOT_FOUND is null plus an error.
	got := must[flight](s, s.gql(asAPIKey, `query($id: ID!) { getFlight(id: $id) { `+flightFields+` } }`, map[string]any{"id": f.ID}), "getFlight")
	if got.ID != f.ID || got.FlightNumber != 7 {
		t.Fatalf("getFlight: %+v", got)
	}
	r = s.gql(asAlice, `{ getFlight(id: "0190f3c4-0000-7000-8000-000000000000") { id } }`, nil)
	if e := s.wantError(r, http.StatusOK, "NOT_FOUND"); len(e.Path) != 1 || e.Path[0] != "getFlight" || string(r.Data["getFlight"]) != "null" {
		t.Fatalf("getFlight of a missing flight: %s", r.raw)
	}
	s.wantError(s.gql(asAnonymous, `query($id: ID!) { getFlight(id: $id) { id } }`, map[string]any{"id": f.ID}), http.StatusOK, "UNAUTHENTICATED")

	// deleteFlight returns the flight as it was.
	s.wantError(s.gql(asAlice, `mutation($id: ID!) { deleteFlight(input: {id: $id}) { id } }`, map[string]any{"id": f.ID}), http.StatusOK, "FORBIDDEN")
	d := must[flight](s, s.gql(asAdmin, `mutation($id: ID!) { deleteFlight(input: {id: $id}) { id flightNumber } }`, map[string]any{"id": f.ID}), "deleteFlight")
	if d.ID != f.ID || d.FlightNumber != 7 {
		t.Fatalf("deleteFlight: %+v", d)
	}
	s.wantError(s.gql(asAlice, `query($id: ID!) { getFlight(id: $id) { id } }`, map[string]any{"id": f.ID}), http.StatusOK, "NOT_FOUND")
	s.noInternalErrors()
}

func TestListFlights(t *testing.T) {
	t.Parallel()
	s := setup(t)
	// Six flights: two leave at 08 on 2026-12-01, one is sold out, one goes to BCN.
	ids := map[int]string{}
	for _, f := range []map[string]any{
		flightInput(1, "2026-12-01T08:00:00Z", "LGW", "MAD", 10),
		flightInput(2, "2026-12-01T08:30:00Z", "LGW", "MAD", 10, "ticketPrice", 20000),
		flightInput(3, "2026-12-01T12:00:00Z", "LGW", "MAD", 0, "seatAllocation", 0),
		flightInput(4, "2026-12-02T08:00:00Z", "LGW", "BCN", 10),
		flightInput(5, "2026-12-03T08:00:00Z", "LGW", "MAD", 10),
		flightInput(6, "2026-12-03T09:00:00Z", "STN", "MAD", 10),
	} {
		if f["flightNumber"] == 3 {
			f["seatCapacity"] = 0
		}
		ids[f["flightNumber"].(int)] = s.createFlight(f).ID
	}
	list := func(filter map[string]any) []int {
		t.Helper()
		r := s.gql(asAlice, `query($f: ModelFlightFilterInput) { listFlights(filter: $f) { items { flightNumber } nextToken } }`, map[string]any{"f": filter})
		p := must[page[flight]](s, r, "listFlights")
		var out []int
		for _, f := range p.Items {
			out = append(out, f.FlightNumber)
		}
		slices.Sort(out)
		return out
	}
	for _, c := range []struct {
		name   string
		filter map[string]any
		want   []int
	}{
		{"all", nil, []int{1, 2, 3, 4, 5, 6}},
		{"seats left", map[string]any{"seatCapacity": map[string]any{"gt": 0}}, []int{1, 2, 4, 5, 6}},
		{"departure hour", map[string]any{"departureDate": map[string]any{"beginsWith": "2026-12-01T08"}}, []int{1, 2}},
		{"and", map[string]any{"and": []any{
			map[string]any{"arrivalAirportCode": map[string]any{"eq": "MAD"}},
			map[string]any{"ticketPrice": map[string]any{"le": 10000}},
		}}, []int{1, 3, 5, 6}},
		{"or", map[string]any{"or": []any{
			map[string]any{"flightNumber": map[string]any{"eq": 1}},
			map[string]any{"arrivalAirportCode": map[string]any{"eq": "BCN"}},
		}}, []int{1, 4}},
		{"not", map[string]any{"not": map[string]any{"departureAirportCode": map[string]any{"eq": "LGW"}}}, []int{6}},
		{"between", map[string]any{"flightNumber": map[string]any{"between": []any{2, 4}}}, []int{2, 3, 4}},
		{"contains", map[string]any{"departureDate": map[string]any{"contains": "-03T"}}, []int{5, 6}},
		{"id", map[string]any{"id": map[string]any{"eq": ids[4]}}, []int{4}},
		{"field and clause", map[string]any{"seatCapacity": map[string]any{"gt": 0}, "or": []any{
			map[string]any{"flightNumber": map[string]any{"eq": 3}}, map[string]any{"flightNumber": map[string]any{"eq": 4}},
		}}, []int{4}},
	} {
		if got := list(c.filter); !slices.Equal(got, c.want) {
			t.Errorf("%s: got %v, want %v", c.name, got, c.want)
		}
	}

	// Pages of two, followed by nextToken, list every flight once.
	var all []string
	var token *string
	for i := 0; ; i++ {
		r := s.gql(asAlice, `query($t: String) { listFlights(limit: 2, nextToken: $t) { items { id } nextToken } }`, map[string]any{"t": token})
		p := must[page[flight]](s, r, "listFlights")
		for _, f := range p.Items {
			all = append(all, f.ID)
		}
		if token = p.NextToken; token == nil {
			break
		}
		if i > 5 {
			t.Fatal("pagination does not end")
		}
	}
	if len(all) != 6 || !slices.IsSorted(all) {
		t.Fatalf("paged ids: %v", all)
	}

	// getFlightBySchedule: by departure date, ascending or descending.
	sched := func(key map[string]any, dir string, filter map[string]any) []int {
		t.Helper()
		r := s.gql(asAPIKey, `query($k: ModelFlightByDepartureScheduleCompositeKeyConditionInput, $d: ModelSortDirection, $f: ModelFlightFilterInput) {
			getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCodeDepartureDate: $k, sortDirection: $d, filter: $f) { items { flightNumber } nextToken } }`,
			map[string]any{"k": key, "d": dir, "f": filter})
		var out []int
		for _, f := range must[page[flight]](s, r, "getFlightBySchedule").Items {
			out = append(out, f.FlightNumber)
		}
		return out
	}
	for _, c := range []struct {
		name   string
		key    map[string]any
		dir    string
		filter map[string]any
		want   []int
	}{
		{"beginsWith", map[string]any{"beginsWith": map[string]any{"arrivalAirportCode": "MAD", "departureDate": "2026-12-01"}}, "ASC", nil, []int{1, 2, 3}},
		{"beginsWith desc", map[string]any{"beginsWith": map[string]any{"arrivalAirportCode": "MAD", "departureDate": "2026-12-01"}}, "DESC", nil, []int{3, 2, 1}},
		{"eq", map[string]any{"eq": map[string]any{"arrivalAirportCode": "BCN", "departureDate": "2026-12-02T08:00:00Z"}}, "ASC", nil, []int{4}},
		{"between", map[string]any{"between": []any{
			map[string]any{"arrivalAirportCode": "MAD", "departureDate": "2026-12-01T08:15"},
			map[string]any{"arrivalAirportCode": "MAD", "departureDate": "2026-12-03T23"},
		}}, "ASC", nil, []int{2, 3, 5}},
		{"filter", map[string]any{"beginsWith": map[string]any{"arrivalAirportCode": "MAD"}}, "ASC", map[string]any{"seatCapacity": map[string]any{"gt": 0}}, []int{1, 2, 5}},
		{"no key", nil, "ASC", nil, []int{1, 2, 3, 4, 5}},
	} {
		if got := sched(c.key, c.dir, c.filter); !slices.Equal(got, c.want) {
			t.Errorf("getFlightBySchedule %s: got %v, want %v", c.name, got, c.want)
		}
	}
	// Two operators at once are refused.
	r := s.gql(asAlice, `{ getFlightBySchedule(departureAirportCode: "LGW", arrivalAirportCodeDepartureDate: {
		eq: {arrivalAirportCode: "MAD"}, gt: {arrivalAirportCode: "MAD"}}) { items { id } } }`, nil)
	s.wantError(r, http.StatusOK, "INVALID")
	s.noInternalErrors()
}
