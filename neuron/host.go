package neuron

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

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
	// NodeRegisterer, if set, receives libp2p's metrics instead of
	// Registerer. libp2p's collectors are the process's (every host in it
	// counts into the same ones), so neurons sharing a process give it one
	// registry without per-neuron labels, and Registerer labels the
	// metrics each neuron has of its own (e.g. with
	// prometheus.WrapRegistererWith).
	NodeRegisterer prometheus.Registerer
	// ReusePort shares the TCP listen ports with other processes that ask
	// for it too (node.Config.ReusePort); off, a port in use is
	// node.ErrAddrInUse.
	ReusePort bool
}

// maxConns is a neuron's connection limit (node.Config.MaxConns): room
// for a validator connected to every miner of a subnet of 4 × 256 uids.
const maxConns = 1024

// newHost starts a node whose identity is the hotkey, with the swarm's
// connection budget if it joins the swarm (the swarm protects the members
// its role needs from trims; without it, the node's defaults).
func newHost(key *wallet.PrivateKey, hc HostConfig, sc SwarmConfig) (host.Host, error) {
	cfg := node.DefaultConfig(key)
	// A validator holds a connection to every miner it queries.
	cfg.MaxConns = maxConns
	if !sc.Disabled {
		cfg.LowWater, cfg.HighWater, cfg.GracePeriod = sc.LowWater, sc.HighWater, sc.GracePeriod
	}
	cfg.ListenAddrs = hc.Listen
	cfg.DataDir, cfg.Registerer, cfg.ReusePort = hc.DataDir, hc.Registerer, hc.ReusePort
	if hc.NodeRegisterer != nil {
		cfg.Registerer = hc.NodeRegisterer
	}
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

// ChainCallers looks query callers up in the metagraph. An answer serves
// for callerFresh (a caller's registration and stake are re-read at most
// that often: a miner of a 256-uid subnet answering 32 validators asked
// the chain at every query, and the embedded chain's lock queued hundreds
// of lookups). When the chain cannot answer (its node is away) it answers
// from the last lookup of the caller that succeeded, however old, so a
// miner keeps serving the neurons it knows until the node is back. Make it
// with NewChainCallers; the zero value (only Chain set) has no such memory.
type ChainCallers struct {
	Chain chainlink.Reader
	known *knownCallers
}

// maxKnownCallers bounds the callers ChainCallers remembers, and
// callerFresh is how long an answer serves without asking the chain.
const (
	maxKnownCallers = 4096
	callerFresh     = 12 * time.Second
)

// NewChainCallers returns ChainCallers for c that remember up to 4096
// callers.
func NewChainCallers(c chainlink.Reader) ChainCallers {
	return ChainCallers{Chain: c, known: &knownCallers{m: map[knownCaller]askedCaller{}, max: maxKnownCallers}}
}

// Caller implements protocol.Callers.
func (c ChainCallers) Caller(ctx context.Context, netuid uint16, id peer.ID) (protocol.Caller, error) {
	addr, err := protocol.HotkeyAddress(id)
	if err != nil {
		return protocol.Caller{}, nil // not a hotkey: unregistered
	}
	known, asked, ok := c.known.get(netuid, id)
	if ok && time.Since(asked) < callerFresh {
		return known, nil
	}
	var caller protocol.Caller
	n, err := c.Chain.Neuron(ctx, netuid, addr)
	switch {
	case errors.Is(err, chainlink.ErrNotFound):
	case err != nil:
		if ok {
			return known, nil
		}
		return protocol.Caller{}, err
	default:
		caller = protocol.Caller{Registered: true, UID: n.UID, Stake: n.Stake}
	}
	c.known.put(netuid, id, caller)
	return caller, nil
}

type knownCaller struct {
	netuid uint16
	id     peer.ID
}

// knownCallers is the last answer the chain gave for each caller and when,
// at most max of them (a full table forgets one at random).
type knownCallers struct {
	mu  sync.Mutex
	m   map[knownCaller]askedCaller
	max int
}

type askedCaller struct {
	caller protocol.Caller
	asked  time.Time
}

func (k *knownCallers) get(netuid uint16, id peer.ID) (protocol.Caller, time.Time, bool) {
	if k == nil {
		return protocol.Caller{}, time.Time{}, false
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	a, ok := k.m[knownCaller{netuid, id}]
	return a.caller, a.asked, ok
}

func (k *knownCallers) put(netuid uint16, id peer.ID, c protocol.Caller) {
	if k == nil {
		return
	}
	k.mu.Lock()
	defer k.mu.Unlock()
	key := knownCaller{netuid, id}
	if _, ok := k.m[key]; !ok && len(k.m) >= k.max {
		for old := range k.m {
			delete(k.m, old)
			break
		}
	}
	k.m[key] = askedCaller{c, time.Now()}
}
