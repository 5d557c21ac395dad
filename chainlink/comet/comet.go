// Package comet is the chainlink implementation for a chain running under
// CometBFT: it talks to a node's RPC (broadcast, ABCI queries, blocks) and
// keeps working across node restarts by retrying.
package comet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"
	coretypes "github.com/cometbft/cometbft/rpc/core/types"
	cmttypes "github.com/cometbft/cometbft/types"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Config configures a client.
type Config struct {
	// URL is the node's RPC address, e.g. http://127.0.0.1:26657.
	URL string
	// PollInterval is how often inclusion and new heads are checked.
	PollInterval time.Duration
	// Logger receives retry warnings.
	Logger *slog.Logger
}

// DefaultConfig talks to a local node.
func DefaultConfig() Config {
	return Config{URL: "http://127.0.0.1:26657", PollInterval: 100 * time.Millisecond, Logger: slog.Default()}
}

// Client implements chainlink.Chain over CometBFT RPC.
type Client struct {
	cfg     Config
	rpc     *rpchttp.HTTP
	http    *http.Client
	url     string
	chainID string
	log     *slog.Logger

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
}

var _ chainlink.Chain = (*Client)(nil)

// Dial connects to the node and reads its chain ID.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if cfg.PollInterval <= 0 || cfg.Logger == nil {
		return nil, errors.New("comet: config: PollInterval must be > 0 and Logger set")
	}
	url := cfg.URL
	if strings.HasPrefix(url, "tcp://") {
		url = "http://" + strings.TrimPrefix(url, "tcp://")
	}
	httpClient := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	rpc, err := rpchttp.NewWithClient(url, "/websocket", httpClient)
	if err != nil {
		return nil, fmt.Errorf("comet: %s: %w", cfg.URL, err)
	}
	st, err := rpc.Status(ctx)
	if err != nil {
		httpClient.CloseIdleConnections()
		return nil, fmt.Errorf("comet: cannot reach the chain at %s (is \"cybertensor chain run\" running?): %w", cfg.URL, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	return &Client{cfg: cfg, rpc: rpc, http: httpClient, url: url, chainID: st.NodeInfo.Network, log: cfg.Logger.With("component", "chainlink"), ctx: cctx, cancel: cancel}, nil
}

// Close stops the client's subscriptions and closes its connections.
func (c *Client) Close() error {
	c.cancel()
	c.wg.Wait()
	c.http.CloseIdleConnections()
	return nil
}

// ChainID implements chainlink.Reader.
func (c *Client) ChainID() string { return c.chainID }

// Head implements chainlink.Reader.
func (c *Client) Head(ctx context.Context) (chainlink.Head, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return chainlink.Head{}, fmt.Errorf("comet: status: %w", err)
	}
	return chainlink.Head{Height: uint64(st.SyncInfo.LatestBlockHeight), AppHash: st.SyncInfo.LatestAppHash, Hash: st.SyncInfo.LatestBlockHash}, nil
}

// query runs an ABCI query and decodes its JSON into out.
func (c *Client) query(ctx context.Context, path string, out any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return fmt.Errorf("comet: query %s: %w", path, err)
	}
	switch res.Response.Code {
	case abci.CodeOK:
		return json.Unmarshal(res.Response.Value, out)
	case abci.CodeNotFound:
		return fmt.Errorf("%s: %w", res.Response.Log, chainlink.ErrNotFound)
	default:
		return fmt.Errorf("comet: query %s: %s", path, res.Response.Log)
	}
}

// Query runs one of the application's query paths (see package abci) and
// decodes the JSON answer into out.
func (c *Client) Query(ctx context.Context, path string, out any) error {
	return c.query(ctx, path, out)
}

// Account implements chainlink.Reader.
func (c *Client) Account(ctx context.Context, a wallet.Address) (chain.Account, error) {
	var acc chain.Account
	return acc, c.query(ctx, "/account/"+a.String(), &acc)
}

// Subnets implements chainlink.Reader.
func (c *Client) Subnets(ctx context.Context) ([]chain.SubnetInfo, error) {
	var out []chain.SubnetInfo
	return out, c.query(ctx, "/subnets", &out)
}

// Subnet implements chainlink.Reader.
func (c *Client) Subnet(ctx context.Context, netuid uint16) (chain.SubnetInfo, error) {
	var out chain.SubnetInfo
	return out, c.query(ctx, "/subnet/"+strconv.Itoa(int(netuid)), &out)
}

// Neuron implements chainlink.Reader.
func (c *Client) Neuron(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.NeuronInfo, error) {
	var out chain.NeuronInfo
	return out, c.query(ctx, fmt.Sprintf("/neuron/%d/%s", netuid, hotkey), &out)
}

// Metagraph implements chainlink.Reader.
func (c *Client) Metagraph(ctx context.Context, netuid uint16, lite bool) (*chain.Metagraph, error) {
	path := fmt.Sprintf("/metagraph/%d", netuid)
	if lite {
		path += "/lite"
	}
	var out chain.Metagraph
	if err := c.query(ctx, path, &out); err != nil {
		return nil, err
	}
	return &out, nil
}

// Submit implements chainlink.Submitter: CheckTx on the node, then wait
// until a block includes the transaction.
func (c *Client) Submit(ctx context.Context, raw []byte) (*chainlink.Receipt, error) {
	hash := chain.TxHash(raw)
	res, err := c.rpc.BroadcastTxSync(ctx, raw)
	if err != nil {
		return nil, fmt.Errorf("comet: broadcast: %w", err)
	}
	if res.Code != 0 {
		rec := &chainlink.Receipt{TxHash: hash, Code: res.Code, Error: res.Log}
		return rec, chainlink.FailedReceipt(rec)
	}
	t := time.NewTicker(c.cfg.PollInterval)
	defer t.Stop()
	for {
		tx, err := c.rpc.Tx(ctx, hash[:], false)
		if err == nil {
			rec := &chainlink.Receipt{TxHash: hash, Height: uint64(tx.Height), Code: tx.TxResult.Code, Error: tx.TxResult.Log, Events: fromABCIEvents(tx.TxResult.Events)}
			if rec.Code != 0 {
				return rec, chainlink.FailedReceipt(rec)
			}
			return rec, nil
		}
		select {
		case <-ctx.Done():
			return nil, fmt.Errorf("comet: waiting for transaction %x: %w", hash[:6], ctx.Err())
		case <-t.C:
		}
	}
}

func fromABCIEvents(events []abcitypes.Event) []chain.Event {
	out := make([]chain.Event, 0, len(events))
	for _, e := range events {
		ev := chain.Event{Type: e.Type, Attrs: map[string]string{}}
		for _, a := range e.Attributes {
			ev.Attrs[a.Key] = a.Value
		}
		out = append(out, ev)
	}
	return out
}

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
		return chainlink.Head{}, err
	}
	blk, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return chainlink.Head{}, err
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

// AppHashAt returns the app hash after block height (read from the header
// of the next block, which commits to it) and whether that block exists.
func (c *Client) AppHashAt(ctx context.Context, height uint64) ([]byte, error) {
	h := int64(height + 1)
	b, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return nil, fmt.Errorf("comet: block %d: %w", h, err)
	}
	return b.Block.Header.AppHash, nil
}
