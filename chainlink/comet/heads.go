package comet

import (
	"context"
	"strconv"
	"time"

	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/cybertensor/cybertensor/chainlink"
)

// SubscribeHeads implements chainlink.Subscriber: it subscribes to
// CometBFT's NewBlock events over the node's websocket, re-subscribing on a
// fresh connection when the node restarts, and checks the latest height
// every second as a safety net, so no head is ever skipped for long.
func (c *Client) SubscribeHeads(ctx context.Context) (<-chan chainlink.Head, error) {
	head, err := c.Head(ctx)
	if err != nil {
		return nil, err
	}
	ch := make(chan chainlink.Head, 1)
	c.wg.Add(1)
	go func() {
		defer c.wg.Done()
		defer close(ch)
		last := head.Height
		// emitUpTo sends every head after last up to height.
		emitUpTo := func(height uint64) {
			for h := last + 1; h <= height; h++ {
				next, err := c.headAt(ctx, h)
				if err != nil {
					c.log.Warn("reading block, retrying", "height", h, "err", err)
					return
				}
				select {
				case ch <- next:
				default:
					select {
					case <-ch:
					default:
					}
					ch <- next
				}
				last = h
			}
		}
		safety := time.NewTicker(time.Second)
		defer safety.Stop()
		for ctx.Err() == nil && c.ctx.Err() == nil {
			events, stop := c.subscribeBlocks(ctx)
		stream:
			for {
				select {
				case <-ctx.Done():
					break stream
				case <-c.ctx.Done():
					break stream
				case ev, ok := <-events:
					if !ok {
						break stream // connection lost: subscribe again
					}
					if nb, ok := ev.Data.(cmttypes.EventDataNewBlock); ok && nb.Block != nil {
						emitUpTo(uint64(nb.Block.Height))
					}
				case <-safety.C:
					if h, err := c.Head(ctx); err == nil {
						emitUpTo(h.Height)
					}
				}
			}
			stop()
			if events == nil {
				select { // no websocket: wait before trying again
				case <-ctx.Done():
				case <-c.ctx.Done():
				case <-safety.C:
					if h, err := c.Head(ctx); err == nil {
						emitUpTo(h.Height)
					}
				}
			}
		}
	}()
	return ch, nil
}

// subscribeBlocks opens a websocket subscription to NewBlock events. On
// failure it returns a nil channel (which never delivers) and logs why.
func (c *Client) subscribeBlocks(ctx context.Context) (<-chan coretypes.ResultEvent, func()) {
	ws, err := rpchttp.New(c.url, "/websocket")
	if err == nil {
		err = ws.Start()
	}
	if err != nil {
		c.log.Debug("websocket unavailable, polling", "err", err)
		return nil, func() {}
	}
	sctx, cancel := context.WithTimeout(ctx, 5*time.Second)
	defer cancel()
	events, err := ws.Subscribe(sctx, "cybertensor-heads", cmttypes.QueryForEvent(cmttypes.EventNewBlock).String(), 16)
	if err != nil {
		c.log.Debug("websocket subscription failed, polling", "err", err)
		ws.Stop()
		return nil, func() {}
	}
	return events, func() {
		uctx, cancel := context.WithTimeout(context.Background(), time.Second)
		defer cancel()
		ws.UnsubscribeAll(uctx, "cybertensor-heads")
		ws.Stop()
	}
}

func (c *Client) headAt(ctx context.Context, height uint64) (chainlink.Head, error) {
	h := int64(height)
	res, err := c.rpc.BlockResults(ctx, &h)
	if err != nil {
		return chainlink.Head{}, c.observe(ctx, "reading a block", err)
	}
	blk, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return chainlink.Head{}, c.observe(ctx, "reading a block", err)
	}
	head := chainlink.Head{Height: height, AppHash: res.AppHash, Hash: blk.BlockID.Hash}
	for _, e := range fromABCIEvents(res.FinalizeBlockEvents) {
		if e.Type == "epoch" {
			if n, err := strconv.ParseUint(e.Attrs["netuid"], 10, 16); err == nil {
				head.Epochs = append(head.Epochs, uint16(n))
			}
		}
	}
	return head, nil
}
