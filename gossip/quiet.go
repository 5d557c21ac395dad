package gossip

import (
	"context"
	"log/slog"
)

// chatter are pubsub's warnings about nothing an operator can act on:
// node's connection manager offers no decaying tags (see node's
// connManager), so pubsub's tag tracer fails to bump a delivery tag on
// every message delivered and warns each time.
var chatter = map[string]bool{
	"error bumping delivery tag": true,
}

// quietHandler passes pubsub's log records on, lowering its chatter to
// debug.
type quietHandler struct{ slog.Handler }

func (h quietHandler) Handle(ctx context.Context, r slog.Record) error {
	if chatter[r.Message] && r.Level > slog.LevelDebug {
		if !h.Handler.Enabled(ctx, slog.LevelDebug) {
			return nil
		}
		r.Level = slog.LevelDebug
	}
	return h.Handler.Handle(ctx, r)
}

func (h quietHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return quietHandler{h.Handler.WithAttrs(as)}
}

func (h quietHandler) WithGroup(name string) slog.Handler {
	return quietHandler{h.Handler.WithGroup(name)}
}
