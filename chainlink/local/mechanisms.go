package local

import (
	"context"
	"fmt"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
)

// Mechanisms implements chainlink.Reader.
func (l *Local) Mechanisms(ctx context.Context, netuid uint16) (chain.MechanismsInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	info, ok := l.eng.State().Mechanisms(netuid)
	if !ok {
		return info, fmt.Errorf("subnet %d: %w", netuid, chainlink.ErrNotFound)
	}
	return info, nil
}
