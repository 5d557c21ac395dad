package protocol

import (
	"context"
	"testing"

	"github.com/cybertensor/cybertensor/protocol/pb"
)

// On real hosts the stream's read deadline (the query's) and the query's
// context end at the same instant; whichever is seen first, a query whose
// server never answers is a timeout, not the server being unavailable
// (about half of such queries were reported unavailable before).
func TestStalledServerIsATimeoutOnRealHosts(t *testing.T) {
	_, ch, server := servePair(t, "tcp", map[string]Handler{"text.stall": HandlerFunc(func(ctx context.Context, _ *Request, _ ResponseWriter) error {
		<-ctx.Done() // never answers
		return ctx.Err()
	})}, DefaultServerConfig())
	c, err := NewClient(ch, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		r := c.Stream(context.Background(), server, &pb.Request{Synapse: "text.stall", Netuid: 1, TimeoutMs: 50}, nil)
		if r.Status != StatusTimeout {
			t.Fatalf("query %d: %v (%v), want a timeout", i, r.Status, r.Err)
		}
	}
}
