package protocol

import (
	"context"
	"log/slog"
	"testing"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// On real hosts the stream's read deadline (the query's) and the query's
// context end at the same instant; whichever is seen first, a query whose
// server never answers is a timeout, not the server being unavailable
// (about half of such queries were reported unavailable before).
func TestStalledServerIsATimeoutOnRealHosts(t *testing.T) {
	mk := func(i int) *node.Node {
		n, err := node.New(context.Background(), node.DefaultTestConfig(key(i)))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { n.Close() })
		return n
	}
	sh, ch := mk(0), mk(1)
	reg := &callerTable{m: map[peer.ID]Caller{ch.ID(): {Registered: true, Stake: 1}}}
	cfg := DefaultServerConfig()
	cfg.Logger = slog.New(slog.DiscardHandler)
	srv, err := NewServer(sh, key(0), reg, map[string]Handler{"text.stall": HandlerFunc(func(ctx context.Context, _ *Request, _ ResponseWriter) error {
		<-ctx.Done() // never answers
		return ctx.Err()
	})}, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer srv.Close()
	if err := ch.Connect(context.Background(), peer.AddrInfo{ID: sh.ID(), Addrs: sh.Addrs()}); err != nil {
		t.Fatal(err)
	}
	c, err := NewClient(ch, DefaultClientConfig())
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for i := range 20 {
		r := c.Stream(context.Background(), sh.ID(), &pb.Request{Synapse: "text.stall", Netuid: 1, TimeoutMs: 50}, nil)
		if r.Status != StatusTimeout {
			t.Fatalf("query %d: %v (%v), want a timeout", i, r.Status, r.Err)
		}
	}
}
