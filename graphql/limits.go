package graphql

import (
	"context"
	"strings"

	"github.com/99designs/gqlgen/graphql"
	"github.com/99designs/gqlgen/graphql/errcode"
	"github.com/vektah/gqlparser/v2/ast"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// depthLimit refuses operations whose selections nest deeper than max
// fields. Introspection (__schema, __type) is not counted: the validator's
// own MaxIntrospectionDepth rule bounds it, and GraphiQL's introspection
// query is deeper than any berth query needs to be. Before the depth, it
// refuses operations that select more than maxSelections fields once their
// fragments are expanded (introspection counted).
type depthLimit struct{ max int }

var _ interface {
	graphql.HandlerExtension
	graphql.OperationContextMutator
} = depthLimit{}

func (depthLimit) ExtensionName() string { return "DepthLimit" }

func (depthLimit) Validate(graphql.ExecutableSchema) error { return nil }

func (d depthLimit) MutateOperationContext(_ context.Context, oc *graphql.OperationContext) *gqlerror.Error {
	// First the size with fragments expanded: gqlgen's complexity walk and
	// field collection expand every fragment spread again, so fragments
	// that each spread the next one twice cost 2^n there from a document
	// of n lines. Measured with memoized fragments here, they are refused
	// before either runs.
	sw := sizeWalker{doc: oc.Doc, memo: map[string]int{}}
	if n := sw.size(oc.Operation.SelectionSet); n > maxSelections {
		err := gqlerror.ErrorPosf(oc.Operation.Position, "the operation selects more than %d fields once its fragments are expanded", maxSelections)
		errcode.Set(err, "COMPLEXITY_LIMIT_EXCEEDED")
		return err
	}
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

// maxSelections bounds how many fields an operation selects once its
// fragments are expanded (introspection included). GraphiQL's
// introspection query selects a few hundred.
const maxSelections = 10_000

type sizeWalker struct {
	doc  *ast.QueryDocument
	memo map[string]int // fragment name → size of its selection set
}

// size returns how many fields set selects, fragments expanded, each
// fragment measured once; it saturates at 1<<40.
func (w sizeWalker) size(set ast.SelectionSet) int {
	n := 0
	for _, sel := range set {
		switch s := sel.(type) {
		case *ast.Field:
			n = addCap(n, addCap(1, w.size(s.SelectionSet)))
		case *ast.InlineFragment:
			n = addCap(n, w.size(s.SelectionSet))
		case *ast.FragmentSpread:
			m, ok := w.memo[s.Name]
			if !ok {
				w.memo[s.Name] = 0 // a cycle, should one get here, ends
				def := s.Definition
				if def == nil && w.doc != nil {
					def = w.doc.Fragments.ForName(s.Name)
				}
				if def != nil {
					m = w.size(def.SelectionSet)
				}
				w.memo[s.Name] = m
			}
			n = addCap(n, m)
		}
	}
	return n
}

// addCap adds non-negative a and b, saturating at 1<<40.
func addCap(a, b int) int { return min(a+b, 1<<40) }

// refuseNUL refuses a query or mutation field whose arguments hold a NUL
// character (U+0000) in any string, before its resolver runs. PostgreSQL
// cannot store NUL in text while SQLite can, so without this the same
// input would be stored by one and fail with INTERNAL on the other; no
// field of berth has a use for it. Errors are INVALID.
func refuseNUL(ctx context.Context, next graphql.Resolver) (any, error) {
	fc := graphql.GetFieldContext(ctx)
	if fc == nil || (fc.Object != "Query" && fc.Object != "Mutation") || len(fc.Field.Arguments) == 0 {
		return next(ctx)
	}
	var vars map[string]any
	if graphql.HasOperationContext(ctx) {
		vars = graphql.GetOperationContext(ctx).Variables
	}
	for _, arg := range fc.Field.Arguments {
		if v, err := arg.Value.Value(vars); err == nil && hasNUL(v) {
			return nil, berth.Errorf(berth.EINVALID, "%s: text may not contain NUL characters (U+0000)", arg.Name)
		}
	}
	return next(ctx)
}

// hasNUL reports whether v, a decoded GraphQL value, holds a string with a
// NUL character.
func hasNUL(v any) bool {
	switch x := v.(type) {
	case string:
		return strings.IndexByte(x, 0) >= 0
	case []any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasNUL(e) {
				return true
			}
		}
	}
	return false
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
	// Mutations: aliases would otherwise repeat one in a request as often
	// as the limit allows (1 each), multiplying what a request, and a rate
	// limit, lets a client do; a password check is the dearest of all.
	m := func(child int) int { return mutationCost + child }
	c.Mutation.CreateFlight = func(child int, _ generated.CreateFlightInput) int { return m(child) }
	c.Mutation.UpdateFlight = func(child int, _ generated.UpdateFlightInput) int { return m(child) }
	c.Mutation.DeleteFlight = func(child int, _ generated.DeleteFlightInput) int { return m(child) }
	c.Mutation.ProcessBooking = func(child int, _ generated.CreateBookingInput) int { return m(child) }
	c.Mutation.CancelBooking = func(child int, _ string) int { return m(child) }
	c.Mutation.CreateBooking = func(child int, _ generated.CreateBookingInput) int { return m(child) }
	c.Mutation.UpdateBooking = func(child int, _ generated.UpdateBookingInput) int { return m(child) }
	c.Mutation.DeleteBooking = func(child int, _ generated.DeleteBookingInput) int { return m(child) }
	c.Mutation.CreateCharge = func(child int, _ int, _, _ string, _ *string) int { return m(child) }
	c.Mutation.RegisterWebhook = func(child int, _ string, _ []string) int { return m(child) }
	c.Mutation.DeleteWebhook = func(child int, _ string) int { return m(child) }
	c.Mutation.RedriveExecution = func(child int, _ string) int { return m(child) }
	c.Mutation.SignUp = func(child int, _ string, _ *string, _ string) int { return passwordCost + child }
	c.Mutation.SignIn = func(child int, _, _ string) int { return passwordCost + child }
	c.Execution.History = func(child int) int { return mulCap(listEstimate, 1+child) }
	c.Query.Webhooks = func(child int) int { return mulCap(listEstimate, 1+child) }
	return c
}

// Costs of mutations: with the default limit (2000), an operation holds at
// most 40 mutations, or 2 signIn/signUp (each an argon2id computation).
const (
	mutationCost = 50
	passwordCost = 1000
)

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
