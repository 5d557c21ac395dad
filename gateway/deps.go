package gateway

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	ma "github.com/multiformats/go-multiaddr"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
)

// Metagraph lists a subnet's miners.
type Metagraph interface {
	// Miners returns the subnet's neurons that serve an axon, in uid
	// order.
	Miners(ctx context.Context, netuid uint16) ([]Miner, error)
}

// Querier sends one query to one miner, passing each chunk of the answer
// to onChunk as it arrives (the slice is valid only during the call);
// pending says more of the answer has already arrived, so a flush can
// wait. protocol.Client does it through ProtocolQuerier.
type Querier interface {
	Query(ctx context.Context, m Miner, req *pb.Request, onChunk func(chunk []byte, pending bool) error) protocol.Result
}

// Deps are what the server uses.
type Deps struct {
	Metagraph Metagraph
	Querier   Querier
	Auth      Authenticator
	Limiter   Limiter
	Recorder  Recorder
	// Organic, if set, receives a sample of the miners' answers for
	// organic scoring (a validator running the gateway).
	Organic Organic
	// Logger receives the server's logs (nil: slog.Default()).
	Logger *slog.Logger
	// Registerer receives the server's metrics (nil: none). If it is
	// also a prometheus.Gatherer (a *prometheus.Registry is), /metrics
	// serves what it gathers.
	Registerer prometheus.Registerer
}

func (d Deps) validate() error {
	if d.Metagraph == nil || d.Querier == nil || d.Auth == nil || d.Limiter == nil || d.Recorder == nil {
		return errors.New("gateway: deps: Metagraph, Querier, Auth, Limiter and Recorder are required")
	}
	return nil
}

// MetagraphReader is the chain reader ChainMetagraph needs;
// chainlink.Chain satisfies it.
type MetagraphReader interface {
	Metagraph(ctx context.Context, netuid uint16, lite bool) (*chain.Metagraph, error)
}

// ChainMetagraph reads miners from the chain's lite metagraph. Self, if
// set, is left out (the gateway's own hotkey's axon).
type ChainMetagraph struct {
	Chain MetagraphReader
	Self  peer.ID
}

// maxAxonAddrs bounds the addresses taken from one axon.
const maxAxonAddrs = 8

// Miners implements Metagraph. An axon whose peer ID does not parse, or
// with no address that parses, is left out.
func (c ChainMetagraph) Miners(ctx context.Context, netuid uint16) ([]Miner, error) {
	mg, err := c.Chain.Metagraph(ctx, netuid, true)
	if err != nil {
		return nil, fmt.Errorf("gateway: reading subnet %d's metagraph: %w", netuid, err)
	}
	var out []Miner
	for uid, ax := range mg.Axons {
		if ax == nil || uid >= len(mg.Hotkeys) {
			continue
		}
		id, err := peer.Decode(ax.PeerID)
		if err != nil || id == c.Self {
			continue
		}
		var addrs []ma.Multiaddr
		for _, s := range ax.Multiaddrs {
			if a, err := ma.NewMultiaddr(s); err == nil && len(addrs) < maxAxonAddrs {
				addrs = append(addrs, a)
			}
		}
		if len(addrs) == 0 {
			continue
		}
		m := Miner{UID: uint16(uid), Hotkey: mg.Hotkeys[uid].String(), Peer: id, Addrs: addrs}
		if uid < len(mg.Incentive) {
			m.Incentive = float64(mg.Incentive[uid]) / 65535
		}
		if uid < len(mg.Trust) {
			m.Trust = float64(mg.Trust[uid]) / 65535
		}
		out = append(out, m)
	}
	return out, nil
}

// ProtocolQuerier queries miners with a protocol.Client on its host,
// adding each miner's axon addresses to the host's peerstore first.
type ProtocolQuerier struct {
	Host   host.Host
	Client *protocol.Client
}

// Query implements Querier.
func (q ProtocolQuerier) Query(ctx context.Context, m Miner, req *pb.Request, onChunk func([]byte, bool) error) protocol.Result {
	if len(m.Addrs) > 0 {
		q.Host.Peerstore().AddAddrs(m.Peer, m.Addrs, peerstore.TempAddrTTL)
	}
	return q.Client.StreamPending(ctx, m.Peer, req, onChunk)
}
