package comet

import (
	"context"
	"fmt"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// ChildKeys implements chainlink.Reader.
func (c *Client) ChildKeys(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.ChildKeysInfo, error) {
	var out chain.ChildKeysInfo
	return out, c.query(ctx, fmt.Sprintf("/children/%d/%s", netuid, hotkey), &out)
}
