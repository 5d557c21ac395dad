package knowledge

import (
	"context"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Routing finds and advertises providers of CIDs; *dht.DHT implements it.
type Routing interface {
	// Provide advertises that this neuron serves c.
	Provide(ctx context.Context, c cid.Cid) error
	// FindProviders returns up to limit providers of c found before ctx
	// ends.
	FindProviders(ctx context.Context, c cid.Cid, limit int) []peer.AddrInfo
}
