// Package comet is the chainlink implementation for a chain running under
// CometBFT: it talks to a node's RPC (broadcast, ABCI queries, blocks) and
// its websocket (new blocks), and keeps working across node restarts: calls
// made while the node is away are retried with backoff, transactions the
// node lost are sent again, and head subscriptions reconnect.
package comet

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	abcitypes "github.com/cometbft/cometbft/abci/types"
	rpchttp "github.com/cometbft/cometbft/rpc/client/http"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Config configures a client.
type Config struct {
	// URL is the node's RPC address, e.g. http://127.0.0.1:26657.
	URL string
	// PollInterval is how often inclusion is checked, and the first delay
	// before trying an unreachable node again.
	PollInterval time.Duration
	// MaxBackoff caps the delay between attempts to reach a node that is
	// away (calls, websocket reconnects).
	MaxBackoff time.Duration
	// CallTimeout bounds each RPC call, so a node that hangs cannot.
	CallTimeout time.Duration
	// HeadCheckEvery is how often a head subscription also asks for the
	// latest block, in case the websocket missed one.
	HeadCheckEvery time.Duration
	// RebroadcastEvery is how often a transaction still not in a block is
	// sent again (a restarted node forgets the ones it held); the node's
	// return also triggers it.
	RebroadcastEvery time.Duration
	// Logger receives retry warnings.
	Logger *slog.Logger
}

// DefaultConfig talks to a local node.
func DefaultConfig() Config {
	return Config{
		URL:              "http://127.0.0.1:26657",
		PollInterval:     100 * time.Millisecond,
		MaxBackoff:       2 * time.Second,
		CallTimeout:      10 * time.Second,
		HeadCheckEvery:   time.Second,
		RebroadcastEvery: 5 * time.Second,
		Logger:           slog.Default(),
	}
}

func (c Config) validate() error {
	if c.PollInterval <= 0 || c.MaxBackoff < c.PollInterval || c.CallTimeout <= 0 || c.HeadCheckEvery <= 0 || c.RebroadcastEvery <= 0 {
		return errors.New("comet: config: PollInterval, CallTimeout, HeadCheckEvery and RebroadcastEvery must be > 0 and MaxBackoff >= PollInterval")
	}
	if c.Logger == nil {
		return errors.New("comet: config: Logger is nil")
	}
	return nil
}

// Client implements chainlink.Chain over CometBFT RPC.
type Client struct {
	cfg     Config
	rpc     *rpchttp.HTTP
	http    *http.Client
	url     string
	chainID string
	log     *slog.Logger
	seqs    *chainlink.Sequences

	// down is when the node stopped answering (unix nanoseconds), or 0.
	down atomic.Int64

	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup
	once   sync.Once
}

var (
	_ chainlink.Chain           = (*Client)(nil)
	_ chainlink.Admitter        = (*Client)(nil)
	_ chainlink.MetagraphReader = (*Client)(nil)
)

// Dial connects to the node and reads its chain ID.
func Dial(ctx context.Context, cfg Config) (*Client, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	url := cfg.URL
	if strings.HasPrefix(url, "tcp://") {
		url = "http://" + strings.TrimPrefix(url, "tcp://")
	}
	httpClient := &http.Client{Timeout: cfg.CallTimeout, Transport: &http.Transport{MaxIdleConnsPerHost: 4, IdleConnTimeout: 30 * time.Second}}
	rpc, err := rpchttp.NewWithClient(url, "/websocket", httpClient)
	if err != nil {
		return nil, fmt.Errorf("chain URL %q: %w", cfg.URL, err)
	}
	cctx, cancel := context.WithCancel(context.Background())
	c := &Client{cfg: cfg, rpc: rpc, http: httpClient, url: url, log: cfg.Logger.With("component", "chainlink", "node", cfg.URL),
		seqs: chainlink.NewSequences(), ctx: cctx, cancel: cancel}
	st, err := rpc.Status(ctx)
	if err != nil {
		c.Close()
		return nil, c.nodeError(ctx, "connecting to the chain", err)
	}
	c.chainID = st.NodeInfo.Network
	return c, nil
}

// Close stops the client's subscriptions and closes its connections. It
// is safe to call more than once.
func (c *Client) Close() error {
	c.once.Do(func() {
		c.cancel()
		c.wg.Wait()
		c.http.CloseIdleConnections()
	})
	return nil
}

// ChainID implements chainlink.Reader.
func (c *Client) ChainID() string { return c.chainID }

// Sequences is the table every Sender on c shares.
func (c *Client) Sequences() *chainlink.Sequences { return c.seqs }

// observe translates err (see nodeError) and notes whether the node
// answered, logging once when it stops and when it is back.
func (c *Client) observe(ctx context.Context, what string, err error) error {
	err = c.nodeError(ctx, what, err)
	now := time.Now().UnixNano()
	switch {
	case errors.Is(err, chainlink.ErrUnreachable):
		if c.down.CompareAndSwap(0, now) {
			c.log.Warn("chain node unreachable; retrying", "err", err)
		}
	case ctx.Err() == nil:
		if since := c.down.Swap(0); since != 0 {
			c.log.Info("chain node back", "away", time.Duration(now-since).Round(time.Millisecond))
		}
	}
	return err
}

// sleep waits d or until ctx or the client ends.
func (c *Client) sleep(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-ctx.Done():
		return ctx.Err()
	case <-c.ctx.Done():
		return chainlink.ErrClosed
	case <-t.C:
		return nil
	}
}

// backoff doubles d up to MaxBackoff, with jitter so that many clients of
// one node do not return in step.
func (c *Client) backoff(d time.Duration) time.Duration {
	d = min(2*d, c.cfg.MaxBackoff)
	return d/2 + rand.N(d/2+1)
}

// retry runs call until it succeeds, fails with anything but the node
// being unreachable, or ctx ends; between attempts it backs off.
func (c *Client) retry(ctx context.Context, call func() error) error {
	delay := c.cfg.PollInterval
	for {
		err := call()
		if !errors.Is(err, chainlink.ErrUnreachable) {
			return err
		}
		if serr := c.sleep(ctx, delay); serr != nil {
			return fmt.Errorf("%w (gave up: %w)", err, serr)
		}
		delay = c.backoff(delay)
	}
}

// Head implements chainlink.Reader.
func (c *Client) Head(ctx context.Context) (chainlink.Head, error) {
	st, err := c.rpc.Status(ctx)
	if err != nil {
		return chainlink.Head{}, c.observe(ctx, "reading the chain's head", err)
	}
	c.observe(ctx, "", nil)
	return chainlink.Head{Height: uint64(st.SyncInfo.LatestBlockHeight), AppHash: st.SyncInfo.LatestAppHash, Hash: st.SyncInfo.LatestBlockHash}, nil
}

// query runs an ABCI query and decodes its JSON into out.
func (c *Client) query(ctx context.Context, path string, out any) error {
	res, err := c.rpc.ABCIQuery(ctx, path, nil)
	if err != nil {
		return c.observe(ctx, "querying the chain for "+path, err)
	}
	c.observe(ctx, "", nil)
	switch res.Response.Code {
	case abci.CodeOK:
		return json.Unmarshal(res.Response.Value, out)
	case abci.CodeNotFound:
		return fmt.Errorf("%s: %w", res.Response.Log, chainlink.ErrNotFound)
	default:
		return fmt.Errorf("querying the chain for %s: %s", path, res.Response.Log)
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

// Commitment implements chainlink.Reader.
func (c *Client) Commitment(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.CommitmentInfo, error) {
	var out chain.CommitmentInfo
	return out, c.query(ctx, fmt.Sprintf("/commitment/%d/%s", netuid, hotkey), &out)
}

// Commitments implements chainlink.Reader.
func (c *Client) Commitments(ctx context.Context, netuid uint16) ([]chain.CommitmentInfo, error) {
	var out []chain.CommitmentInfo
	if err := c.query(ctx, fmt.Sprintf("/commitments/%d", netuid), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Identity implements chainlink.Reader.
func (c *Client) Identity(ctx context.Context, coldkey wallet.Address) (chain.Identity, error) {
	var out chain.Identity
	return out, c.query(ctx, fmt.Sprintf("/identity/%s", coldkey), &out)
}

// SubnetIdentity implements chainlink.Reader.
func (c *Client) SubnetIdentity(ctx context.Context, netuid uint16) (chain.Identity, error) {
	var out chain.Identity
	return out, c.query(ctx, fmt.Sprintf("/subnetidentity/%d", netuid), &out)
}

// BurnCost implements chainlink.Reader.
func (c *Client) BurnCost(ctx context.Context, netuid uint16) (chain.BurnCost, error) {
	var out chain.BurnCost
	return out, c.query(ctx, fmt.Sprintf("/burncost/%d", netuid), &out)
}

// LockCost implements chainlink.Reader.
func (c *Client) LockCost(ctx context.Context) (chain.LockCost, error) {
	var out chain.LockCost
	return out, c.query(ctx, "/lockcost", &out)
}

// Overview implements chainlink.Reader.
func (c *Client) Overview(ctx context.Context, coldkey wallet.Address) ([]chain.OwnedHotkey, error) {
	var out []chain.OwnedHotkey
	if err := c.query(ctx, "/overview/"+coldkey.String(), &out); err != nil {
		return nil, err
	}
	return out, nil
}

// StakesOf implements chainlink.Reader.
func (c *Client) StakesOf(ctx context.Context, coldkey wallet.Address) ([]chain.StakeEntry, error) {
	var out []chain.StakeEntry
	if err := c.query(ctx, "/stakes/"+coldkey.String(), &out); err != nil {
		return nil, err
	}
	return out, nil
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

// AppHashAt returns the app hash after block height (read from the header
// of the next block, which commits to it) and whether that block exists.
func (c *Client) AppHashAt(ctx context.Context, height uint64) ([]byte, error) {
	h := int64(height + 1)
	b, err := c.rpc.Block(ctx, &h)
	if err != nil {
		return nil, c.observe(ctx, fmt.Sprintf("reading block %d", h), err)
	}
	return b.Block.Header.AppHash, nil
}

// receiptOf is a receipt from a transaction's result in a block.
func receiptOf(hash [32]byte, height int64, r *abcitypes.ExecTxResult) (*chainlink.Receipt, error) {
	rec := &chainlink.Receipt{TxHash: hash, Height: uint64(height), Code: r.Code, Error: r.Log, Events: fromABCIEvents(r.Events)}
	if rec.Code != 0 {
		return rec, chainlink.FailedReceipt(rec)
	}
	return rec, nil
}
