package graphql

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// depthLimit refuses operations whose selections nest deeper than max
// fields. Introspection (__schema, __type) is not counted: the validator's
// own MaxIntrospectionDepth rule bounds it, and GraphiQL's introspection
// query is deeper than any berth query needs to be.
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string { return "DepthLimit" }

func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	w := depthWalker{doc: oc.Doc, memo: map[string]int{}}
	if n := w.depth(oc.Operation.SelectionSet); n > d.max {
		err := gqlerror.ErrorPosf(oc.Operation.Position, "the operation nests %d levels deep; the limit is %d", n, d.max)
		errcode.Set(err, "DEPTH_LIMIT_EXCEEDED")
		return err
	}
	return nil
}

type depthWalker struct {
	doc  *ast.QueryDocument
	memo map[string]int // fragment name → depth of its selection set
}

// depth returns how many fields deep set nests. Fragments are measured once
// (validation has already refused fragment cycles).
func (w depthWalker) depth(set ast.SelectionSet) int {
	deepest := 0
	for _, sel := range set {
		n := 0
		switch s := sel.(type) {
		case *ast.Field:
			if strings.HasPrefix(s.Name, "__") {
				continue
			}
			n = 1 + w.depth(s.SelectionSet)
		case *ast.InlineFragment:
			n = w.depth(s.SelectionSet)
		case *ast.FragmentSpread:
			d, ok := w.memo[s.Name]
			if !ok {
				w.memo[s.Name] = 0 // a cycle, should one get here, ends
				def := s.Definition
				if def == nil && w.doc != nil {
					def = w.doc.Fragments.ForName(s.Name)
				}
				if def != nil {
					d = w.depth(def.SelectionSet)
				}
				w.memo[s.Name] = d
			}
			n = d
		}
		deepest = max(deepest, n)
	}
	return deepest
}

// listEstimate is the number of items assumed for a list without a limit
// argument (an execution's history, the webhooks).
const listEstimate = 20

// complexityRoot prices the fields that return many objects. With scalars at
// 0 and objects at 1 plus their selections (gqlgen's default, see
// NewHandler), a page of limit items costs limit times its selection, so
// listFlights(limit: 100) { items { …scalars… } } costs 100 and
// listBookings(limit: 1000) { items { id outboundFlight { id } } } 2000.
func complexityRoot() generated.ComplexityRoot {
	var c generated.ComplexityRoot
	c.Query.ListFlights = func(child int, _ *generated.ModelFlightFilterInput, limit *int, _ *string) int {
		return pageCost(child, limit)
	}
	c.Query.GetFlightBySchedule = func(child int, _ *string, _ *generated.ModelFlightByDepartureScheduleCompositeKeyConditionInput,
		_ *generated.ModelSortDirection, _ *generated.ModelFlightFilterInput, limit *int, _ *string) int {
		return pageCost(child, limit)
	}
	c.Query.ListBookings = func(child int, _ *generated.ModelBookingFilterInput, limit *int, _ *string) int {
		return pageCost(child, limit)
	}
	c.Query.GetBookingByStatus = func(child int, _ *string, _ *generated.ModelStringKeyConditionInput, _ *generated.ModelSortDirection,
		_ *generated.ModelBookingFilterInput, limit *int, _ *string) int {
		return pageCost(child, limit)
	}
	c.Query.DeadLetters = func(child int, limit *int, _ *string) int { return pageCost(child, limit) }
	c.Execution.History = func(child int) int { return mulCap(listEstimate, 1+child) }
	c.Query.Webhooks = func(child int) int { return mulCap(listEstimate, 1+child) }
	return c
}

// pageCost is the cost of a connection field: its page size times the cost
// of its selection (which includes the items object).
func pageCost(child int, limit *int) int {
	n := airline.DefaultPageSize
	if limit != nil {
		// Out-of-range limits are refused by the service; cap them here so
		// the product cannot overflow.
		n = min(max(*limit, 1), airline.MaxPageSize+1)
	}
	return mulCap(n, max(child, 1))
}

// mulCap multiplies non-negative a and b, saturating at 1<<40.
func mulCap(a, b int) int {
	const limit = 1 << 40
	if a <= 0 || b <= 0 {
		return 0
	}
	if a > limit/b {
		return limit
	}
	return a * b
}
