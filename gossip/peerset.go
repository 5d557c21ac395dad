package gossip

import (
	"context"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/host"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"
)

// ErrOutsidePeerSet is the error gossipsub gets opening its stream to a
// connected peer that Config.GossipWith refuses.
var ErrOutsidePeerSet = errors.New("gossip: peer outside the gossip peer set")

// peerSetHost is the host as gossipsub sees it when Config.GossipWith is
// set. gossipsub opens a stream to every connected peer that speaks its
// protocol and keeps three goroutines and two streams for each, whether
// or not the peer ever enters a mesh; here it opens none to a peer it
// refuses, and a stream such a peer opens is reset, so the pair spends
// nothing on gossip. Every other method is the host's own.
type peerSetHost struct {
	host.Host
	with func(peer.ID) bool
}

// NewStream opens gossipsub's stream to p if the peer set holds p.
func (h *peerSetHost) NewStream(ctx context.Context, p peer.ID, pids ...protocol.ID) (network.Stream, error) {
	if !h.with(p) {
		return nil, fmt.Errorf("%w: %s", ErrOutsidePeerSet, p)
	}
	return h.Host.NewStream(ctx, p, pids...)
}

// SetStreamHandler serves gossipsub's protocol to the peers the set holds.
func (h *peerSetHost) SetStreamHandler(pid protocol.ID, handler network.StreamHandler) {
	h.Host.SetStreamHandler(pid, h.admit(handler))
}

// SetStreamHandlerMatch serves gossipsub's protocols to the peers the set
// holds.
func (h *peerSetHost) SetStreamHandlerMatch(pid protocol.ID, match func(protocol.ID) bool, handler network.StreamHandler) {
	h.Host.SetStreamHandlerMatch(pid, match, h.admit(handler))
}

// admit wraps handler to reset the streams of peers outside the set.
func (h *peerSetHost) admit(handler network.StreamHandler) network.StreamHandler {
	return func(s network.Stream) {
		if !h.with(s.Conn().RemotePeer()) {
			s.Reset()
			return
		}
		handler(s)
	}
}
