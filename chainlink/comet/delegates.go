package comet

import (
	"context"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// Delegate implements chainlink.Reader.
func (c *Client) Delegate(ctx context.Context, hotkey wallet.Address) (chain.DelegateInfo, error) {
	var out chain.DelegateInfo
	return out, c.query(ctx, "/delegate/"+hotkey.String(), &out)
}

// Delegates implements chainlink.Reader.
func (c *Client) Delegates(ctx context.Context) ([]chain.DelegateInfo, error) {
	var out []chain.DelegateInfo
	if err := c.query(ctx, "/delegates", &out); err != nil {
		return nil, err
	}
	return out, nil
}

// Delegations implements chainlink.Reader.
func (c *Client) Delegations(ctx context.Context, coldkey wallet.Address) ([]chain.DelegationInfo, error) {
	var out []chain.DelegationInfo
	if err := c.query(ctx, "/delegations/"+coldkey.String(), &out); err != nil {
		return nil, err
	}
	return out, nil
}
