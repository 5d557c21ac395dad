package comet

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"

	rpcclient "github.com/cometbft/cometbft/rpc/client"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chainlink"
)

// MetagraphAt implements chainlink.MetagraphReader with one ABCI query,
// /metagraph/<netuid>?fields=…, at q.Height. The node's answer is
// decoded as untrusted bytes and must be the metagraph asked for.
func (c *Client) MetagraphAt(ctx context.Context, q chainlink.MetagraphQuery) (*chain.Metagraph, error) {
	fields := q.FieldsOrLite()
	path := fmt.Sprintf("/metagraph/%d?fields=%s", q.Netuid, fields)
	if q.Height > 1<<62 {
		return nil, fmt.Errorf("block %d is out of range", q.Height)
	}
	res, err := c.rpc.ABCIQueryWithOptions(ctx, path, nil, rpcclient.ABCIQueryOptions{Height: int64(q.Height)})
	if err != nil {
		return nil, c.observe(ctx, "querying the chain for "+path, err)
	}
	c.observe(ctx, "", nil)
	r := res.Response
	switch r.Code {
	case abci.CodeOK:
	case abci.CodeNotFound:
		return nil, fmt.Errorf("%s: %w", r.Log, chainlink.ErrNotFound)
	case abci.CodeHeightNotKept:
		var he chain.HeightError
		if err := json.Unmarshal(r.Value, &he); err != nil || he.Height != q.Height {
			return nil, fmt.Errorf("querying the chain for %s at block %d: %s: %w", path, q.Height, r.Log, chain.ErrHeightNotKept)
		}
		return nil, &he
	default:
		return nil, fmt.Errorf("querying the chain for %s: %s", path, r.Log)
	}
	m, err := chain.DecodeMetagraph(r.Value)
	if err != nil {
		return nil, fmt.Errorf("the chain's answer to %s: %w", path, err)
	}
	if m.Netuid != q.Netuid || !slices.Equal(m.Fields, fields.Names()) || (q.Height != 0 && m.Block != q.Height) {
		return nil, fmt.Errorf("the chain answered %s with subnet %d at block %d, columns %v: not what was asked", path, m.Netuid, m.Block, m.Fields)
	}
	return m, nil
}
