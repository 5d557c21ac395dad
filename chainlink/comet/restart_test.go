package comet

import (
	"context"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
)

// A transaction the node admitted and then lost (kill -9 before its block:
// CometBFT keeps its mempool in memory) is sent again once the node is
// back, and Send returns its block (#20: Send waited for it forever).
func TestSendSurvivesNodeLosingTheTransaction(t *testing.T) {
	if testing.Short() {
		t.Skip("runs and kills a CometBFT node")
	}
	// Blocks two seconds apart leave time to kill the node between
	// admission and the next block.
	node := comettest.Init(t, testGenesis(), comettest.Options{BlockTime: 2 * time.Second})
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 45*time.Second)
	defer cancel()
	// Start right after a block.
	h0, err := c.Head(ctx)
	for err == nil {
		var h chainlink.Head
		if h, err = c.Head(ctx); err == nil && h.Height > h0.Height {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if err != nil {
		t.Fatal(err)
	}
	type result struct {
		rec *chainlink.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rec, err := chainlink.NewSender(c, key(1)).Send(ctx, transfer(addrOf(key(7)), 5))
		done <- result{rec, err}
	}()
	for {
		n, err := c.rpc.NumUnconfirmedTxs(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if n.Total > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	node.Kill(t)
	killed := time.Now()
	node.Start(t)
	select {
	case r := <-done:
		if r.err != nil {
			t.Fatalf("send across the restart: %v", r.err)
		}
		t.Logf("included in block %d, %v after the kill", r.rec.Height, time.Since(killed).Round(time.Millisecond))
	case <-ctx.Done():
		t.Fatal("send never returned")
	}
	acc, err := c.Account(ctx, addrOf(key(7)))
	if err != nil || acc.Balance != 5 {
		t.Fatalf("balance %+v %v", acc, err)
	}
}
