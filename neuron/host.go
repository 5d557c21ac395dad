package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/node"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// HostConfig is what a neuron's libp2p host needs beyond its key.
type HostConfig struct {
	// Listen are the libp2p listen addresses.
	Listen []string
	// DataDir keeps the peers it knew, to redial after a restart; empty
	// keeps nothing.
	DataDir string
	// Registerer, if set, receives libp2p's and gossip's Prometheus
	// metrics (nil: no metrics, the cheap default).
	Registerer prometheus.Registerer
	// ReusePort shares the TCP listen ports with other processes that ask
	// for it too (node.Config.ReusePort); off, a port in use is
	// node.ErrAddrInUse.
	ReusePort bool
}

// newHost starts a node whose identity is the hotkey.
func newHost(key *wallet.PrivateKey, hc HostConfig) (host.Host, error) {
	cfg := node.DefaultConfig(key)
	cfg.ListenAddrs = hc.Listen
	cfg.DataDir, cfg.Registerer, cfg.ReusePort = hc.DataDir, hc.Registerer, hc.ReusePort
	cfg.Logger = slog.New(slog.DiscardHandler)
	n, err := node.New(context.Background(), cfg)
	if err != nil {
		return nil, fmt.Errorf("neuron: starting node: %w", err)
	}
	return n, nil
}

// FullAddrs returns a host's addresses with its peer ID
// (/ip4/…/tcp/…/p2p/…), as outside tools dial it.
func FullAddrs(h host.Host) []string {
	var out []string
	for _, a := range h.Addrs() {
		out = append(out, a.Encapsulate(ma.StringCast("/p2p/"+h.ID().String())).String())
	}
	return out
}

// ChainCallers looks query callers up in the metagraph.
type ChainCallers struct {
	Chain chainlink.Reader
}

// Caller implements protocol.Callers.
func (c ChainCallers) Caller(ctx context.Context, netuid uint16, id peer.ID) (protocol.Caller, error) {
	addr, err := protocol.HotkeyAddress(id)
	if err != nil {
		return protocol.Caller{}, nil // not a hotkey: unregistered
	}
	n, err := c.Chain.Neuron(ctx, netuid, addr)
	if errors.Is(err, chainlink.ErrNotFound) {
		return protocol.Caller{}, nil
	}
	if err != nil {
		return protocol.Caller{}, err
	}
	return protocol.Caller{Registered: true, UID: n.UID, Stake: n.Stake}, nil
}
