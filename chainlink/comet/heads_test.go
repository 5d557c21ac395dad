package comet

import (
	"context"
	"log/slog"
	"testing"
	"time"

	"go.uber.org/goleak"

	"github.com/cybertensor/cybertensor/chainlink"
)

// Heads keep coming after the node is killed and started again, pushed
// over a websocket the client opened again itself: the periodic check of
// the latest block is off here.
func TestHeadsResumeOverANewWebsocketAfterRestart(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	dial(t, node.URL) // waits for the node
	cfg := DefaultConfig()
	cfg.URL, cfg.Logger = node.URL, slog.New(slog.DiscardHandler)
	cfg.HeadCheckEvery = time.Hour
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	c, err := Dial(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	heads, err := c.SubscribeHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	next := func(after uint64) chainlink.Head {
		t.Helper()
		for {
			select {
			case h, ok := <-heads:
				if !ok {
					t.Fatal("heads closed")
				}
				if h.Height > after {
					return h
				}
			case <-ctx.Done():
				t.Fatalf("no head after %d", after)
			}
		}
	}
	before := next(next(0).Height) // pushed ones, not just the first read
	node.Kill(t)
	started := time.Now()
	node.Start(t)
	// When does the node answer again?
	up := make(chan time.Duration, 1)
	go func() {
		for ctx.Err() == nil {
			if _, err := c.rpc.Status(ctx); err == nil {
				up <- time.Since(started)
				return
			}
			time.Sleep(5 * time.Millisecond)
		}
	}()
	after := next(before.Height)
	resumed := time.Since(started)
	var rpcUp time.Duration
	select {
	case rpcUp = <-up:
	case <-ctx.Done():
		t.Fatal("the node never answered")
	}
	if after.Height <= before.Height || len(after.Hash) == 0 {
		t.Fatalf("head %+v after %+v", after, before)
	}
	t.Logf("restart: RPC answering %v after start, first new head %v after start (%v after RPC)",
		rpcUp.Round(time.Millisecond), resumed.Round(time.Millisecond), (resumed - rpcUp).Round(time.Millisecond))
}

// Closing a client while its node is away stops everything it started,
// reconnecting included.
func TestCloseWhileTheNodeIsAway(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	dial(t, node.URL)
	defer goleak.VerifyNone(t, goleak.IgnoreCurrent(),
		// CometBFT's websocket client meters with go-metrics, whose arbiter
		// is a process-wide goroutine started once and never stopped.
		goleak.IgnoreAnyFunction("github.com/rcrowley/go-metrics.(*meterArbiter).tick"))
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	heads, err := c.SubscribeHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	<-heads
	<-heads
	node.Kill(t)
	// The client notices: reads fail, the websocket is reconnecting.
	for {
		if _, err := c.Head(ctx); err != nil {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	c.Close()
	if _, ok := <-heads; ok {
		for range heads {
		}
	}
}
