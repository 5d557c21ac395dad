package gossip

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"
)

// pubsub's delivery-tag warning is debug; its other warnings stay (#20
// "Quiet logs": it was 122 of a miner's 141 lines).
func TestQuietHandlerLowersChatter(t *testing.T) {
	var b bytes.Buffer
	l := slog.New(quietHandler{slog.NewTextHandler(&b, nil)}).With("component", "gossip")
	l.Warn("error bumping delivery tag", "err", "no decaying tag registered for topic t")
	if b.Len() != 0 {
		t.Fatalf("logged at info level: %s", b.String())
	}
	l.Warn("something else")
	if !strings.Contains(b.String(), "level=WARN") || !strings.Contains(b.String(), "component=gossip") {
		t.Fatalf("another warning: %q", b.String())
	}
	b.Reset()
	slog.New(quietHandler{slog.NewTextHandler(&b, &slog.HandlerOptions{Level: slog.LevelDebug})}).Warn("error bumping delivery tag")
	if !strings.Contains(b.String(), "level=DEBUG") {
		t.Fatalf("at debug level: %q", b.String())
	}
}
