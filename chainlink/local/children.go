package local

import (
	"context"
	"fmt"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// ChildKeys implements chainlink.Reader.
func (l *Local) ChildKeys(ctx context.Context, netuid uint16, hotkey wallet.Address) (chain.ChildKeysInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, ok := l.eng.State().ChildKeys(netuid, hotkey)
	if !ok {
		return info, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return info, nil
}
