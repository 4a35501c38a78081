package airline

import (
	"strings"

	"github.com/berthhq/berth"
)

// Filter is an Amplify model filter: conditions on fields, combined with
// and/or/not. Transports build it from their input types.
type Filter struct {
	Fields map[string]*Cond
	And    []*Filter
	Or     []*Filter
	Not    *Filter
}

// Cond is a condition on one field. Values are string, int64 or bool.
type Cond struct {
	Eq, Ne, Lt, Le, Gt, Ge any
	Between                []any
	BeginsWith             *string
	Contains, NotContains  *string
	AttributeExists        *bool
}

// maxFilterDepth bounds nesting of and/or/not.
const maxFilterDepth = 8

// Validate checks that every field exists on the record kind and nesting
// is bounded.
func (f *Filter) Validate(fields map[string]bool) error { return f.validate(fields, 0) }

func (f *Filter) validate(fields map[string]bool, depth int) error {
	if f == nil {
		return nil
	}
	if depth > maxFilterDepth {
		return berth.Errorf(berth.EINVALID, "filter is nested more than %d levels", maxFilterDepth)
	}
	for name, c := range f.Fields {
		if !fields[name] {
			return berth.Errorf(berth.EINVALID, "cannot filter on unknown field %q", name)
		}
		if c != nil && c.Between != nil && len(c.Between) != 2 {
			return berth.Errorf(berth.EINVALID, "between on %q needs exactly two values", name)
		}
	}
	for _, g := range append(append([]*Filter{}, f.And...), f.Or...) {
		if err := g.validate(fields, depth+1); err != nil {
			return err
		}
	}
	return f.Not.validate(fields, depth+1)
}

// Match evaluates f against a record whose fields get returns.
func (f *Filter) Match(get func(field string) any) bool {
	if f == nil {
		return true
	}
	for name, c := range f.Fields {
		if c != nil && !c.match(get(name)) {
			return false
		}
	}
	for _, g := range f.And {
		if !g.Match(get) {
			return false
		}
	}
	if len(f.Or) > 0 {
		ok := false
		for _, g := range f.Or {
			if g.Match(get) {
				ok = true
				break
			}
		}
		if !ok {
			return false
		}
	}
	if f.Not != nil && f.Not.Match(get) {
		return false
	}
	return true
}

func (c *Cond) match(v any) bool {
	if c.AttributeExists != nil && *c.AttributeExists != (v != nil && v != "") {
		return false
	}
	// test reports whether w is unset, or comparable with v and ok(cmp).
	test := func(w any, ok func(int) bool) bool {
		if w == nil {
			return true
		}
		r := compare(v, w)
		return r != -2 && ok(r)
	}
	if !test(c.Eq, func(r int) bool { return r == 0 }) ||
		(c.Ne != nil && compare(v, c.Ne) == 0) ||
		!test(c.Lt, func(r int) bool { return r < 0 }) ||
		!test(c.Le, func(r int) bool { return r <= 0 }) ||
		!test(c.Gt, func(r int) bool { return r > 0 }) ||
		!test(c.Ge, func(r int) bool { return r >= 0 }) {
		return false
	}
	if len(c.Between) == 2 && (!test(c.Between[0], func(r int) bool { return r >= 0 }) || !test(c.Between[1], func(r int) bool { return r <= 0 })) {
		return false
	}
	s, _ := v.(string)
	if c.BeginsWith != nil && !strings.HasPrefix(s, *c.BeginsWith) {
		return false
	}
	if c.Contains != nil && !strings.Contains(s, *c.Contains) {
		return false
	}
	if c.NotContains != nil && strings.Contains(s, *c.NotContains) {
		return false
	}
	return true
}

// compare orders a and b of the same kind; mismatched kinds compare unequal (-2).
func compare(a, b any) int {
	switch x := a.(type) {
	case int64:
		var y int64
		switch v := b.(type) {
		case int64:
			y = v
		case int:
			y = int64(v)
		default:
			return -2
		}
		switch {
		case x < y:
			return -1
		case x > y:
			return 1
		}
		return 0
	case string:
		y, ok := b.(string)
		if !ok {
			return -2
		}
		return strings.Compare(x, y)
	case bool:
		y, ok := b.(bool)
		if !ok || x != y {
			return -2
		}
		return 0
	}
	return -2
}
