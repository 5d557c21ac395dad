package comet

import (
	"context"
	"fmt"

	"github.com/cybertensor/cybertensor/chain"
)

// Mechanisms implements chainlink.Reader.
func (c *Client) Mechanisms(ctx context.Context, netuid uint16) (chain.MechanismsInfo, error) {
	var out chain.MechanismsInfo
	return out, c.query(ctx, fmt.Sprintf("/mechanisms/%d", netuid), &out)
}
