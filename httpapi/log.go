package httpapi

import (
	"context"
	"log/slog"

	"github.com/berthhq/berth"
)

// LogHandler wraps h so that every record logged with a request's context
// carries the request id and the caller's subject.
func LogHandler(h slog.Handler) slog.Handler { return contextHandler{h} }

type contextHandler struct{ slog.Handler }

func (h contextHandler) Handle(ctx context.Context, r slog.Record) error {
	if id := RequestID(ctx); id != "" {
		r.AddAttrs(slog.String("request_id", id))
	}
	if a := berth.ActorFromContext(ctx); a != nil {
		r.AddAttrs(slog.String("customer", a.Subject))
	}
	return h.Handler.Handle(ctx, r)
}

func (h contextHandler) WithAttrs(attrs []slog.Attr) slog.Handler {
	return contextHandler{h.Handler.WithAttrs(attrs)}
}

func (h contextHandler) WithGroup(name string) slog.Handler {
	return contextHandler{h.Handler.WithGroup(name)}
}
