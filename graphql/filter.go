package graphql

import (
	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// maxFilterNesting bounds and/or/not nesting while converting; the service
// validates the same bound (8) on the result.
const maxFilterNesting = 8

func tooDeep() error {
	return berth.Errorf(berth.EINVALID, "filter is nested more than %d levels", maxFilterNesting)
}

// flightFilter converts an Amplify flight filter. Field names are those of
// airline.FlightFields; Int values become int64.
func flightFilter(in *generated.ModelFlightFilterInput) (*airline.Filter, error) {
	return convertFilter(in, 0, func(in *generated.ModelFlightFilterInput, f *filter) error {
		return f.add(
			idField("id", in.ID),
			strField("departureDate", in.DepartureDate),
			strField("departureAirportCode", in.DepartureAirportCode),
			strField("departureAirportName", in.DepartureAirportName),
			strField("departureCity", in.DepartureCity),
			strField("departureLocale", in.DepartureLocale),
			strField("arrivalDate", in.ArrivalDate),
			strField("arrivalAirportCode", in.ArrivalAirportCode),
			strField("arrivalAirportName", in.ArrivalAirportName),
			strField("arrivalCity", in.ArrivalCity),
			strField("arrivalLocale", in.ArrivalLocale),
			intField("ticketPrice", in.TicketPrice),
			strField("ticketCurrency", in.TicketCurrency),
			intField("flightNumber", in.FlightNumber),
			intField("seatAllocation", in.SeatAllocation),
			intField("seatCapacity", in.SeatCapacity),
		)
	}, func(in *generated.ModelFlightFilterInput) ([]*generated.ModelFlightFilterInput, []*generated.ModelFlightFilterInput, *generated.ModelFlightFilterInput) {
		return in.And, in.Or, in.Not
	})
}

// bookingFilter converts an Amplify booking filter. Field names are those
// of airline.BookingFields.
func bookingFilter(in *generated.ModelBookingFilterInput) (*airline.Filter, error) {
	return convertFilter(in, 0, func(in *generated.ModelBookingFilterInput, f *filter) error {
		return f.add(
			idField("id", in.ID),
			statusField("status", in.Status),
			strField("paymentToken", in.PaymentToken),
			boolField("checkedIn", in.CheckedIn),
			strField("customer", in.Customer),
			strField("createdAt", in.CreatedAt),
			strField("bookingReference", in.BookingReference),
			idField("bookingOutboundFlightId", in.BookingOutboundFlightID),
		)
	}, func(in *generated.ModelBookingFilterInput) ([]*generated.ModelBookingFilterInput, []*generated.ModelBookingFilterInput, *generated.ModelBookingFilterInput) {
		return in.And, in.Or, in.Not
	})
}

// convertFilter converts one level of a filter input with fields, and its
// and/or/not clauses recursively. Null entries in and/or are skipped.
func convertFilter[T any](in *T, depth int, fields func(*T, *filter) error, clauses func(*T) (and, or []*T, not *T)) (*airline.Filter, error) {
	if in == nil {
		return nil, nil // no filter: everything matches
	}
	if depth > maxFilterNesting {
		return nil, tooDeep()
	}
	f := &filter{Filter: airline.Filter{Fields: map[string]*airline.Cond{}}}
	if err := fields(in, f); err != nil {
		return nil, err
	}
	and, or, not := clauses(in)
	for _, list := range []struct {
		in  []*T
		out *[]*airline.Filter
	}{{and, &f.And}, {or, &f.Or}} {
		for _, sub := range list.in {
			if sub == nil {
				continue
			}
			g, err := convertFilter(sub, depth+1, fields, clauses)
			if err != nil {
				return nil, err
			}
			*list.out = append(*list.out, g)
		}
	}
	var err error
	if f.Not, err = convertFilter(not, depth+1, fields, clauses); err != nil {
		return nil, err
	}
	return &f.Filter, nil
}

// filter is an airline.Filter being built.
type filter struct{ airline.Filter }

// namedCond is a converted condition on a field, or the error converting it.
type namedCond struct {
	name string
	cond *airline.Cond
	err  error
}

func strField(name string, in *generated.ModelStringInput) namedCond {
	c, err := stringCond(in)
	return namedCond{name, c, err}
}

func idField(name string, in *generated.ModelIDInput) namedCond {
	c, err := idCond(in)
	return namedCond{name, c, err}
}

func intField(name string, in *generated.ModelIntInput) namedCond {
	c, err := intCond(in)
	return namedCond{name, c, err}
}

func boolField(name string, in *generated.ModelBooleanInput) namedCond {
	return namedCond{name: name, cond: boolCond(in)}
}

func statusField(name string, in *generated.ModelBookingStatusInput) namedCond {
	return namedCond{name: name, cond: statusCond(in)}
}

// add records the conditions that are set, or returns the first error.
func (f *filter) add(conds ...namedCond) error {
	for _, c := range conds {
		if c.err != nil {
			return c.err
		}
		if c.cond != nil {
			f.Fields[c.name] = c.cond
		}
	}
	return nil
}

// value returns *p as an any, or a nil interface (not a typed nil) for nil.
func value[T any, V any](p *T, conv func(T) V) any {
	if p == nil {
		return nil
	}
	return conv(*p)
}

func same[T any](v T) T                       { return v }
func toInt64(v int) int64                     { return int64(v) }
func statusName(s berth.BookingStatus) string { return string(s) }

// between converts a between list: nil if absent, INVALID with a null entry.
func between[T any, V any](list []*T, conv func(T) V) ([]any, error) {
	if list == nil {
		return nil, nil
	}
	out := make([]any, len(list))
	for i, p := range list {
		if p == nil {
			return nil, berth.Errorf(berth.EINVALID, "between needs two non-null values")
		}
		out[i] = conv(*p)
	}
	return out, nil
}

func stringCond(in *generated.ModelStringInput) (*airline.Cond, error) {
	if in == nil {
		return nil, nil
	}
	b, err := between(in.Between, same[string])
	if err != nil {
		return nil, err
	}
	return &airline.Cond{
		Eq: value(in.Eq, same[string]), Ne: value(in.Ne, same[string]),
		Lt: value(in.Lt, same[string]), Le: value(in.Le, same[string]),
		Gt: value(in.Gt, same[string]), Ge: value(in.Ge, same[string]),
		Between: b, BeginsWith: in.BeginsWith, Contains: in.Contains, NotContains: in.NotContains,
		AttributeExists: in.AttributeExists,
	}, nil
}

func idCond(in *generated.ModelIDInput) (*airline.Cond, error) {
	if in == nil {
		return nil, nil
	}
	s := generated.ModelStringInput(*in) // the same operators on ids
	return stringCond(&s)
}

func intCond(in *generated.ModelIntInput) (*airline.Cond, error) {
	if in == nil {
		return nil, nil
	}
	b, err := between(in.Between, toInt64)
	if err != nil {
		return nil, err
	}
	return &airline.Cond{
		Eq: value(in.Eq, toInt64), Ne: value(in.Ne, toInt64),
		Lt: value(in.Lt, toInt64), Le: value(in.Le, toInt64),
		Gt: value(in.Gt, toInt64), Ge: value(in.Ge, toInt64),
		Between: b, AttributeExists: in.AttributeExists,
	}, nil
}

func boolCond(in *generated.ModelBooleanInput) *airline.Cond {
	if in == nil {
		return nil
	}
	return &airline.Cond{Eq: value(in.Eq, same[bool]), Ne: value(in.Ne, same[bool]), AttributeExists: in.AttributeExists}
}

func statusCond(in *generated.ModelBookingStatusInput) *airline.Cond {
	if in == nil {
		return nil
	}
	return &airline.Cond{Eq: value(in.Eq, statusName), Ne: value(in.Ne, statusName)}
}

// oneOf returns the name of the only operator set, "" if none is, or
// INVALID naming arg if several are.
func oneOf(arg string, ops ...namedOp) (string, error) {
	name := ""
	for _, op := range ops {
		if !op.set {
			continue
		}
		if name != "" {
			return "", berth.Errorf(berth.EINVALID, "%s takes one operator; got %s and %s", arg, name, op.name)
		}
		name = op.name
	}
	return name, nil
}

type namedOp struct {
	name string
	set  bool
}

// scheduleKey converts getFlightBySchedule's key condition to the
// operator name and its key values (two for between).
func scheduleKey(in *generated.ModelFlightByDepartureScheduleCompositeKeyConditionInput) (string, []airline.KeyCond, error) {
	if in == nil {
		return "", nil, nil
	}
	const arg = "arrivalAirportCodeDepartureDate"
	op, err := oneOf(arg, namedOp{"eq", in.Eq != nil}, namedOp{"le", in.Le != nil}, namedOp{"lt", in.Lt != nil},
		namedOp{"ge", in.Ge != nil}, namedOp{"gt", in.Gt != nil}, namedOp{"between", in.Between != nil},
		namedOp{"beginsWith", in.BeginsWith != nil})
	if err != nil {
		return "", nil, err
	}
	key := func(k *generated.ModelFlightByDepartureScheduleCompositeKeyInput) airline.KeyCond {
		return airline.KeyCond{ArrivalAirportCode: deref(k.ArrivalAirportCode), DepartureDate: deref(k.DepartureDate)}
	}
	var keys []airline.KeyCond
	switch op {
	case "":
	case "between":
		if len(in.Between) != 2 || in.Between[0] == nil || in.Between[1] == nil {
			return "", nil, berth.Errorf(berth.EINVALID, "%s.between needs two non-null keys", arg)
		}
		keys = []airline.KeyCond{key(in.Between[0]), key(in.Between[1])}
	default:
		k := map[string]*generated.ModelFlightByDepartureScheduleCompositeKeyInput{
			"eq": in.Eq, "le": in.Le, "lt": in.Lt, "ge": in.Ge, "gt": in.Gt, "beginsWith": in.BeginsWith}[op]
		keys = []airline.KeyCond{key(k)}
	}
	return op, keys, nil
}

// statusKey converts getBookingByStatus's key condition on the status name.
func statusKey(in *generated.ModelStringKeyConditionInput) (*airline.StatusKey, error) {
	if in == nil {
		return nil, nil
	}
	const arg = "status"
	op, err := oneOf(arg, namedOp{"eq", in.Eq != nil}, namedOp{"le", in.Le != nil}, namedOp{"lt", in.Lt != nil},
		namedOp{"ge", in.Ge != nil}, namedOp{"gt", in.Gt != nil}, namedOp{"between", in.Between != nil},
		namedOp{"beginsWith", in.BeginsWith != nil})
	switch {
	case err != nil:
		return nil, err
	case op == "":
		return nil, nil
	case op == "between" && (len(in.Between) != 2 || in.Between[0] == nil || in.Between[1] == nil):
		return nil, berth.Errorf(berth.EINVALID, "%s.between needs two non-null values", arg)
	}
	k := &airline.StatusKey{Eq: in.Eq, Le: in.Le, Lt: in.Lt, Ge: in.Ge, Gt: in.Gt, BeginsWith: in.BeginsWith}
	if op == "between" {
		k.Between = []string{*in.Between[0], *in.Between[1]}
	}
	return k, nil
}
