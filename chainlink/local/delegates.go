package local

import (
	"context"
	"fmt"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Delegate implements chainlink.Reader.
func (l *Local) Delegate(ctx context.Context, hotkey wallet.Address) (chain.DelegateInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	d, ok := l.eng.State().Delegate(hotkey)
	if !ok {
		return d, fmt.Errorf("delegate %s: %w", hotkey, chainlink.ErrNotFound)
	}
	return d, nil
}

// Delegates implements chainlink.Reader.
func (l *Local) Delegates(ctx context.Context) ([]chain.DelegateInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().Delegates(), nil
}

// Delegations implements chainlink.Reader.
func (l *Local) Delegations(ctx context.Context, coldkey wallet.Address) ([]chain.DelegationInfo, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.eng.State().Delegations(coldkey), nil
}
