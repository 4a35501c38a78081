package graphql

import (
	"log/slog"
	"time"

	"github.com/berthhq/berth"
	"github.com/berthhq/berth/airline"
	"github.com/berthhq/berth/graphql/internal/generated"
)

// resolver is the root of the resolvers. They only translate: the services
// check who may do what, except for the operator fields (executions,
// webhooks) that have no service and check for Admin here.
type resolver struct {
	air   *airline.Service
	store berth.Store
	id    *identity
	log   *slog.Logger
	// waiters holds a token for each getBooking waiting for a status.
	waiters chan struct{}
	// draining is closed when the server shuts down: waits end.
	draining <-chan struct{}
}

var _ generated.ResolverRoot = (*resolver)(nil)

func (r *resolver) Query() generated.QueryResolver         { return queryResolver{r} }
func (r *resolver) Mutation() generated.MutationResolver   { return mutationResolver{r} }
func (r *resolver) Booking() generated.BookingResolver     { return bookingResolver{r} }
func (r *resolver) Execution() generated.ExecutionResolver { return executionResolver{r} }
func (r *resolver) Me() generated.MeResolver               { return meResolver{} }

type (
	queryResolver     struct{ *resolver }
	mutationResolver  struct{ *resolver }
	bookingResolver   struct{ *resolver }
	executionResolver struct{ *resolver }
	meResolver        struct{}
)

// timeLayout is how times are shown: ISO-8601 UTC with milliseconds.
const timeLayout = "2006-01-02T15:04:05.000Z"

func formatTime(t time.Time) string { return t.UTC().Format(timeLayout) }

// optTime formats t, or returns nil for the zero time.
func optTime(t time.Time) *string {
	if t.IsZero() {
		return nil
	}
	s := formatTime(t)
	return &s
}

// optString returns nil for "" and &s otherwise.
func optString(s string) *string {
	if s == "" {
		return nil
	}
	return &s
}

// deref returns *p, or the zero value for nil.
func deref[T any](p *T) T {
	var zero T
	if p == nil {
		return zero
	}
	return *p
}
