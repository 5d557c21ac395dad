package dht

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Provide advertises on the DHT that this neuron serves c (a knowledge
// object or body). Provider records expire after 48 hours: callers provide
// again periodically.
func (d *DHT) Provide(ctx context.Context, c cid.Cid) error {
	if err := d.kad.Provide(ctx, c, true); err != nil {
		return fmt.Errorf("dht: providing %s: %w", c, err)
	}
	return nil
}

// FindProviders returns up to limit providers of c (limit <= 0: no bound),
// with their addresses, found before ctx ends or the search completes.
// This neuron is never among them.
func (d *DHT) FindProviders(ctx context.Context, c cid.Cid, limit int) []peer.AddrInfo {
	if limit < 0 {
		limit = 0
	}
	var out []peer.AddrInfo
	for p := range d.kad.FindProvidersAsync(ctx, c, limit) {
		if p.ID != d.h.ID() {
			out = append(out, p)
		}
	}
	return out
}
