package neuron

import (
	"context"
	"errors"
	"fmt"
	"slices"

	"github.com/libp2p/go-libp2p/core/host"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// ErrNotRegistered is returned when a neuron started without its coldkey
// (cold nil) finds its hotkey not registered on the subnet: only the
// coldkey can register it.
var ErrNotRegistered = errors.New("neuron: the hotkey is not registered on the subnet, and registering it needs the coldkey")

// ensureRegistered registers hot on netuid (burning from cold's balance)
// unless it already holds a uid, and returns the uid. cold may be nil for
// a hotkey already registered (ErrNotRegistered otherwise).
func ensureRegistered(ctx context.Context, c chainlink.Chain, cold, hot *wallet.PrivateKey, netuid uint16) (uint16, error) {
	hotAddr := hot.PublicKey().Address()
	if n, err := c.Neuron(ctx, netuid, hotAddr); err == nil {
		return n.UID, nil
	} else if !errors.Is(err, chainlink.ErrNotFound) {
		return 0, err
	}
	if cold == nil {
		return 0, fmt.Errorf("%w (hotkey %s, subnet %d)", ErrNotRegistered, hotAddr, netuid)
	}
	msg := &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: uint32(netuid), Hotkey: hotAddr[:]}}}
	if _, err := chainlink.NewSender(c, cold).Send(ctx, msg); err != nil {
		return 0, fmt.Errorf("neuron: registering on subnet %d: %w", netuid, err)
	}
	n, err := c.Neuron(ctx, netuid, hotAddr)
	if err != nil {
		return 0, err
	}
	return n.UID, nil
}

// serveAxon announces the host's peer ID and addresses on chain; a host
// that listens nowhere has no axon to serve. An axon the chain already
// holds is not sent again (a restart on the same addresses needs no new
// one, and the subnet's serving_rate_limit would refuse it); a refused
// one says from which block the hotkey may serve again.
func serveAxon(ctx context.Context, c chainlink.Chain, hot *wallet.PrivateKey, netuid uint16, h host.Host, protocols []string) error {
	var addrs []string
	for _, a := range h.Addrs() {
		addrs = append(addrs, a.String())
	}
	if len(addrs) == 0 {
		return errors.New("neuron: the host listens on no address; no axon served")
	}
	if len(addrs) > 8 {
		addrs = addrs[:8]
	}
	msg := &chainpb.Msg{Sum: &chainpb.Msg_ServeAxon{ServeAxon: &chainpb.ServeAxon{
		Netuid: uint32(netuid), PeerId: h.ID().String(), Multiaddrs: addrs, Protocols: protocols,
	}}}
	n, nerr := c.Neuron(ctx, netuid, hot.PublicKey().Address())
	if a := n.Axon; nerr == nil && a != nil && a.PeerID == h.ID().String() && slices.Equal(a.Multiaddrs, addrs) && slices.Equal(a.Protocols, protocols) {
		return nil
	}
	if _, err := chainlink.NewSender(c, hot).Send(ctx, msg); err != nil {
		if errors.Is(err, chain.ErrServingRateLimit) && nerr == nil && n.Axon != nil {
			if sub, serr := c.Subnet(ctx, netuid); serr == nil {
				return fmt.Errorf("neuron: serving axon: the hotkey served other addresses at block %d and subnet %d's serving_rate_limit is %d blocks: start again from block %d, or on the same listen addresses: %w",
					n.Axon.Block, netuid, sub.Params.ServingRateLimit, n.Axon.Block+sub.Params.ServingRateLimit, err)
			}
		}
		return fmt.Errorf("neuron: serving axon: %w", err)
	}
	return nil
}
