package graphql

import (
	"context"
	"errors"
	"log/slog"
	"runtime/debug"

	"github.com/99designs/gqlgen/graphql"
	"github.com/vektah/gqlparser/v2/gqlerror"

	"github.com/berthhq/berth"
)

// codePersistedQueryNotFound is the code automatic persisted query clients
// (Apollo) wait for before sending the full query; it is kept as gqlgen
// sets it.
const codePersistedQueryNotFound = "PERSISTED_QUERY_NOT_FOUND"

// presenter is the one place where errors become GraphQL errors. Every error
// leaves with extensions.code:
//
//   - an error carrying a *berth.Error (from the services, the store, or
//     this package) keeps its code and message;
//   - a request error made before anything ran (parse and validation
//     errors, bad variables, depth and complexity limits, persisted-query
//     problems) keeps gqlgen's message and gets code INVALID, with gqlgen's
//     own code, if any, in extensions.reason (GRAPHQL_PARSE_FAILED,
//     GRAPHQL_VALIDATION_FAILED, COMPLEXITY_LIMIT_EXCEEDED,
//     DEPTH_LIMIT_EXCEEDED); PERSISTED_QUERY_NOT_FOUND keeps its code;
//   - anything else is a bug or an outage: code INTERNAL, message
//     "internal error", and the error is logged with the request's context.
type presenter struct {
	log *slog.Logger
}

func (p presenter) present(ctx context.Context, err error) *gqlerror.Error {
	out := &gqlerror.Error{Err: err}
	var gqlErr *gqlerror.Error
	if errors.As(err, &gqlErr) {
		out.Path, out.Locations = gqlErr.Path, gqlErr.Locations
	}
	var be *berth.Error
	switch {
	case errors.As(err, &be):
		out.Message, out.Extensions = be.Message, map[string]any{"code": be.Code}
	case gqlErr != nil && gqlErr.Err == nil:
		out.Message, out.Extensions = gqlErr.Message, map[string]any{"code": berth.EINVALID}
		switch code, _ := gqlErr.Extensions["code"].(string); code {
		case codePersistedQueryNotFound:
			out.Extensions["code"] = code
		case "", berth.EINVALID:
		default:
			out.Extensions["reason"] = code
		}
	default:
		attrs := []any{"err", err.Error()}
		if path := graphql.GetPath(ctx); path != nil {
			attrs = append(attrs, "path", path.String())
		}
		if graphql.HasOperationContext(ctx) {
			attrs = append(attrs, "operation", graphql.GetOperationContext(ctx).OperationName)
		}
		p.log.ErrorContext(ctx, "graphql: internal error", attrs...)
		out.Message, out.Extensions = berth.ErrorMessage(err), map[string]any{"code": berth.ErrorCode(err)}
	}
	return out
}

// recover turns a panic in a resolver into an INTERNAL error for the
// caller and logs it with its stack.
func (p presenter) recover(ctx context.Context, v any) error {
	attrs := []any{"panic", v, "stack", string(debug.Stack())}
	if path := graphql.GetPath(ctx); path != nil {
		attrs = append(attrs, "path", path.String())
	}
	p.log.ErrorContext(ctx, "graphql: panic", attrs...)
	return berth.Errorf(berth.EINTERNAL, "internal error")
}
