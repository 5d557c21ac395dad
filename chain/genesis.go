package chain

import (
	"errors"
	"fmt"
)

// GenesisBalance is an initial balance.
type GenesisBalance struct {
	Address Address `json:"address"`
	Amount  uint64  `json:"amount"`
}

// GenesisSubnet is a subnet that exists from the first block.
type GenesisSubnet struct {
	Name  string  `json:"name"`
	Owner Address `json:"owner"`
	// Params default to the genesis SubnetDefaults.
	Params *Hyperparams `json:"params,omitempty"`
}

// Genesis is the chain's initial state.
type Genesis struct {
	ChainID string `json:"chain_id"`
	// Root may call every sudo_set_*.
	Root    Address `json:"root"`
	Globals Globals `json:"globals"`
	// SubnetDefaults are the hyperparameters of newly registered subnets.
	SubnetDefaults Hyperparams      `json:"subnet_defaults"`
	Balances       []GenesisBalance `json:"balances"`
	Subnets        []GenesisSubnet  `json:"subnets"`
}

// DefaultGenesis has cybernet's defaults and no balances.
func DefaultGenesis(chainID string, root Address) Genesis {
	return Genesis{ChainID: chainID, Root: root, Globals: DefaultGlobals(), SubnetDefaults: DefaultHyperparams()}
}

// LocalnetGenesis is for a local network: fast subnet defaults (tempo 20),
// a cheap subnet lock, a faucet, a short take_rate_limit, and the given
// funded accounts.
func LocalnetGenesis(chainID string, root Address, balances []GenesisBalance) Genesis {
	g := DefaultGenesis(chainID, root)
	g.SubnetDefaults = LocalnetHyperparams()
	g.Globals.NetworkMinLockCost = 1_000_000_000
	g.Globals.FaucetAmount = 100_000_000_000
	g.Globals.FaucetInterval = 10
	g.Globals.TakeRateLimit = LocalnetTakeRateLimit
	g.Globals.ChildrenCooldown = 15
	g.Globals.ChildkeyTakeRateLimit = 5
	g.Balances = balances
	return g
}

// LocalnetTakeRateLimit is a local network's take_rate_limit: 1000
// blocks, about 4 minutes of localnet's 250 ms blocks, so a refused raise
// can be seen and waited out.
const LocalnetTakeRateLimit = 1000

// maxChainIDLen bounds the chain ID.
const maxChainIDLen = 64

func (g *Genesis) validate() error {
	if g.ChainID == "" || len(g.ChainID) > maxChainIDLen {
		return fmt.Errorf("genesis: chain_id must be 1 to %d bytes", maxChainIDLen)
	}
	if err := g.Globals.validate(); err != nil {
		return fmt.Errorf("genesis: globals: %w", err)
	}
	if err := g.SubnetDefaults.validate(); err != nil {
		return fmt.Errorf("genesis: subnet_defaults: %w", err)
	}
	var total uint64
	seen := map[Address]bool{}
	for i, b := range g.Balances {
		if seen[b.Address] {
			return fmt.Errorf("genesis: balances[%d]: duplicate address %s", i, b.Address)
		}
		seen[b.Address] = true
		if total+b.Amount < total || total+b.Amount > 1<<62 {
			return errors.New("genesis: balances sum above 2^62")
		}
		total += b.Amount
	}
	if uint64(len(g.Subnets)) > g.Globals.SubnetLimit {
		return fmt.Errorf("genesis: %d subnets above subnet_limit %d", len(g.Subnets), g.Globals.SubnetLimit)
	}
	for i, s := range g.Subnets {
		if len(s.Name) > maxNameLen {
			return fmt.Errorf("genesis: subnets[%d]: name longer than %d bytes", i, maxNameLen)
		}
		if s.Params != nil {
			if err := s.Params.validate(); err != nil {
				return fmt.Errorf("genesis: subnets[%d]: %w", i, err)
			}
		}
	}
	return nil
}
