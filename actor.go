package berth

import (
	"context"
	"slices"
)

// Group names with a meaning to berth's rules.
const (
	GroupAdmin    = "Admin"
	GroupCustomer = "customer"
)

// ActorKind says how the caller authenticated.
type ActorKind string

const (
	ActorUser   ActorKind = "USER"    // a verified access token (own issuer or external OIDC)
	ActorAPIKey ActorKind = "API_KEY" // an API key: public reads only
	ActorSystem ActorKind = "SYSTEM"  // berth itself (sagas, jobs, CLI)
)

// Actor is who is calling. It is built only from verified credentials, never
// from input fields.
type Actor struct {
	Kind     ActorKind
	Subject  string   // token "sub", or the API key id
	Username string   // display name if known
	Groups   []string // e.g. "Admin", "customer"
}

// IsAdmin reports whether the actor is in the Admin group (or is berth itself).
func (a *Actor) IsAdmin() bool {
	return a != nil && (a.Kind == ActorSystem || slices.Contains(a.Groups, GroupAdmin))
}

// IsUser reports whether the actor is a signed-in user.
func (a *Actor) IsUser() bool { return a != nil && a.Kind == ActorUser && a.Subject != "" }

// InGroup reports whether the actor belongs to group g.
func (a *Actor) InGroup(g string) bool { return a != nil && slices.Contains(a.Groups, g) }

// CanRead reports whether the actor may read data owned by subject owner.
func (a *Actor) CanRead(owner string) bool {
	return a.IsAdmin() || (a.IsUser() && a.Subject == owner)
}

type actorKey struct{}

// NewContextWithActor returns a copy of ctx carrying a.
func NewContextWithActor(ctx context.Context, a *Actor) context.Context {
	return context.WithValue(ctx, actorKey{}, a)
}

// ActorFromContext returns the actor in ctx, or nil for an anonymous caller.
func ActorFromContext(ctx context.Context) *Actor {
	a, _ := ctx.Value(actorKey{}).(*Actor)
	return a
}

// SystemActor is the actor berth's own background work runs as.
var SystemActor = &Actor{Kind: ActorSystem, Subject: "system", Username: "berth"}

// RequireReader allows any authenticated caller: a signed-in user or an API
// key. Returns UNAUTHENTICATED for anonymous callers.
func RequireReader(ctx context.Context) (*Actor, error) {
	a := ActorFromContext(ctx)
	if a == nil {
		return nil, Errorf(EUNAUTHENTICATED, "sign in or send an API key")
	}
	return a, nil
}

// RequireUser allows signed-in users (and berth itself). Returns
// UNAUTHENTICATED for anonymous callers and FORBIDDEN for API keys.
func RequireUser(ctx context.Context) (*Actor, error) {
	a := ActorFromContext(ctx)
	switch {
	case a == nil:
		return nil, Errorf(EUNAUTHENTICATED, "sign in to do this")
	case !a.IsUser() && !a.IsAdmin():
		return nil, Errorf(EFORBIDDEN, "API keys may only read flights")
	}
	return a, nil
}

// RequireAdmin allows the Admin group only.
func RequireAdmin(ctx context.Context) (*Actor, error) {
	a, err := RequireUser(ctx)
	if err != nil {
		return nil, err
	}
	if !a.IsAdmin() {
		return nil, Errorf(EFORBIDDEN, "only Admin may do this")
	}
	return a, nil
}
