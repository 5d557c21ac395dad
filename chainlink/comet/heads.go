package comet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/cybertensor/cybertensor/chainlink"
)

// wsReadWait is how long the websocket may stay silent before the
// connection counts as lost: the node pings every 27 s.
const wsReadWait = 40 * time.Second

// SubscribeHeads implements chainlink.Subscriber. New blocks are pushed
// over the node's websocket; when the connection drops (the node
// restarted) it reconnects with backoff and subscribes again. Every
// HeadCheckEvery it also asks for the latest height, so a missed push
// delays a head by that much at most. Heads come in order, none skipped
// unless the subscriber falls behind.
func (c *Client) SubscribeHeads(ctx context.Context) (<-chan chainlink.Head, error) {
	head, err := c.Head(ctx)
	if err != nil {
		return nil, err
	}
	sctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.ctx, cancel)
	pushed := make(chan uint64, 1)
	ch := make(chan chainlink.Head, 1)
	c.wg.Add(2)
	go func() {
		defer c.wg.Done()
		c.watchBlocks(sctx, pushed)
	}()
	go func() {
		defer c.wg.Done()
		defer close(ch)
		defer stop()
		defer cancel()
		c.followHeads(sctx, head.Height, pushed, ch)
	}()
	return ch, nil
}

// followHeads delivers the heads after last to ch until ctx ends.
func (c *Client) followHeads(ctx context.Context, last uint64, pushed <-chan uint64, ch chan chainlink.Head) {
	emitUpTo := func(height uint64) {
		for h := last + 1; h <= height && ctx.Err() == nil; h++ {
			next, err := c.headAt(ctx, h)
			if err != nil {
				c.log.Debug("reading a new block; trying again", "height", h, "err", err)
				return
			}
			select {
			case ch <- next:
			default:
				select { // behind: replace the stale head with the latest
				case <-ch:
				default:
				}
				ch <- next
			}
			last = h
		}
	}
	check := time.NewTicker(c.cfg.HeadCheckEvery)
	defer check.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case h := <-pushed:
			emitUpTo(h)
		case <-check.C:
			if head, err := c.Head(ctx); err == nil {
				emitUpTo(head.Height)
			}
		}
	}
}

// watchBlocks keeps a websocket subscription to new blocks open until ctx
// ends, passing on each block's height (the latest only, if the reader is
// behind).
func (c *Client) watchBlocks(ctx context.Context, pushed chan uint64) {
	delay := c.cfg.PollInterval
	for {
		err := c.streamBlocks(ctx, pushed, func() { delay = c.cfg.PollInterval })
		if ctx.Err() != nil {
			return
		}
		delay = c.backoff(delay)
		c.log.Debug("block subscription lost; reconnecting", "err", err, "in", delay)
		if c.sleep(ctx, delay) != nil {
			return
		}
	}
}

// streamBlocks runs one websocket connection: it subscribes to new block
// headers, calls subscribed once the node confirms, and reads until the
// connection fails or ctx ends.
func (c *Client) streamBlocks(ctx context.Context, pushed chan uint64, subscribed func()) error {
	wsURL := "ws" + strings.TrimPrefix(c.url, "http") + "/websocket"
	d := websocket.Dialer{HandshakeTimeout: c.cfg.CallTimeout, Proxy: http.ProxyFromEnvironment}
	conn, _, err := d.DialContext(ctx, wsURL, nil)
	if err != nil {
		return err
	}
	defer conn.Close()
	defer context.AfterFunc(ctx, func() { conn.Close() })()
	conn.SetReadLimit(1 << 20)
	conn.SetPingHandler(func(data string) error {
		conn.SetReadDeadline(time.Now().Add(wsReadWait))
		return conn.WriteControl(websocket.PongMessage, []byte(data), time.Now().Add(c.cfg.CallTimeout))
	})
	conn.SetWriteDeadline(time.Now().Add(c.cfg.CallTimeout))
	if err := conn.WriteJSON(map[string]any{
		"jsonrpc": "2.0", "id": "heads", "method": "subscribe",
		"params": map[string]string{"query": "tm.event='NewBlockHeader'"},
	}); err != nil {
		return err
	}
	conn.SetReadDeadline(time.Now().Add(c.cfg.CallTimeout))
	for first := true; ; first = false {
		var msg struct {
			Error *struct {
				Message string `json:"message"`
				Data    string `json:"data"`
			} `json:"error"`
			Result struct {
				Data struct {
					Value struct {
						Header struct {
							Height string `json:"height"`
						} `json:"header"`
					} `json:"value"`
				} `json:"data"`
			} `json:"result"`
		}
		_, b, err := conn.ReadMessage()
		if err != nil {
			return err
		}
		conn.SetReadDeadline(time.Now().Add(wsReadWait))
		if err := json.Unmarshal(b, &msg); err != nil {
			return fmt.Errorf("decoding a websocket message: %w", err)
		}
		if msg.Error != nil {
			return fmt.Errorf("subscribing to new blocks: %s %s", msg.Error.Message, msg.Error.Data)
		}
		if first {
			subscribed()
			continue
		}
		h, err := strconv.ParseUint(msg.Result.Data.Value.Header.Height, 10, 64)
		if err != nil {
			return errors.New("a new-block event without a height")
		}
		select {
		case pushed <- h:
		default:
			select {
			case <-pushed:
			default:
			}
			pushed <- h
		}
	}
}

func (c *Client) headAt(ctx context.Context, height uint64) (chainlink.Head, error) {
	h := int64(height)
	res, err := c.rpc.BlockResults(ctx, &h)
	if err != nil {
		return chainlink.Head{}, c.observe(ctx, fmt.Sprintf("reading block %d", h), err)
	}
	blk, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return chainlink.Head{}, c.observe(ctx, fmt.Sprintf("reading block %d", h), err)
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
