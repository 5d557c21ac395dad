package dht

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/ipfs/go-cid"
	kadpb "github.com/libp2p/go-libp2p-kad-dht/pb"
	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/protocol"
)

// Provide advertises on the DHT that this neuron serves c (a knowledge
// object or body). Provider records expire after Config.ProviderTTL (24
// hours by default): callers provide again periodically.
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

// maxNetuid is the largest netuid a subnet can have: the chain gives a new
// subnet the lowest free netuid, and holds at most subnet_limit (at most
// 1,024) of them.
const maxNetuid = 1024

// subnetKeysByChain holds subnetKeys for each chain ID, made once: every
// neuron of a process (a localnet, a miner running several hotkeys) reads
// the same map, which nobody writes. Each neuron made its own before, 95
// KiB of heap.
var subnetKeysByChain sync.Map // chain ID → map[string]uint16

// sharedSubnetKeys is subnetKeys(chainID), made once per process.
func sharedSubnetKeys(chainID string) map[string]uint16 {
	if m, ok := subnetKeysByChain.Load(chainID); ok {
		return m.(map[string]uint16)
	}
	m, _ := subnetKeysByChain.LoadOrStore(chainID, subnetKeys(chainID))
	return m.(map[string]uint16)
}

// subnetKeys maps each subnet key's multihash to its netuid, for netuids
// 0 to maxNetuid.
func subnetKeys(chainID string) map[string]uint16 {
	m := make(map[string]uint16, maxNetuid+1)
	for n := range uint16(maxNetuid + 1) {
		m[string(SubnetKey(chainID, n).Hash())] = n
	}
	return m
}

// maxProviderKey is the longest key kad-dht takes in ADD_PROVIDER.
const maxProviderKey = 80

// screen is kad-dht's request hook: it sees each request before kad-dht
// handles it, and screens ADD_PROVIDER with screenProvider.
func (d *DHT) screen(ctx context.Context, s network.Stream, req *kadpb.Message) {
	if req.GetType() == kadpb.Message_ADD_PROVIDER {
		d.screenProvider(ctx, s.Conn().RemotePeer(), req)
	}
}

// screenProvider keeps the sender's provider record in the provider store
// (which evicts within its limits) or refuses it. The request keeps only
// that record, or none: kad-dht then adds it to its provider manager
// (which writes it to the store, as a refresh) or, with none, refuses the
// request and resets the stream.
//
// A record for a subnet key is kept only if the Registry says the
// sender's hotkey is registered on that subnet. Any other record is kept,
// in the registered pool if the sender is registered on a subnet this
// neuron has joined, else in the unregistered one.
func (d *DHT) screenProvider(ctx context.Context, from peer.ID, req *kadpb.Message) {
	var rec *kadpb.Message_Peer
	for _, p := range req.ProviderPeers {
		// As kad-dht: a provider record is its sender's own, with an
		// address.
		if peer.ID(p.Id) == from && len(p.Addresses()) > 0 {
			rec = p
			break
		}
	}
	req.ProviderPeers = nil
	key := req.GetKey()
	if rec == nil || len(key) == 0 || len(key) > maxProviderKey {
		return
	}
	c, ok := d.classify(ctx, string(key), from)
	if !ok || c == unregistered && !d.provides.allow(from, time.Now()) {
		return
	}
	d.providers.add(string(key), from, c)
	req.ProviderPeers = []*kadpb.Message_Peer{rec}
}

// classify says in which pool p's record for key belongs, or ok=false if
// it is refused.
func (d *DHT) classify(ctx context.Context, key string, p peer.ID) (c class, ok bool) {
	netuid, isSubnetKey := d.subnetKeys[key]
	if d.reg == nil {
		return unregistered, !isSubnetKey
	}
	hotkey, err := protocol.HotkeyAddress(p)
	if err != nil {
		return unregistered, !isSubnetKey
	}
	ctx, cancel := context.WithTimeout(ctx, registryTimeout)
	defer cancel()
	if isSubnetKey {
		_, ok, err := d.reg.Lookup(ctx, netuid, hotkey)
		return registered, ok && err == nil
	}
	d.joinedMu.Lock()
	joined := make([]uint16, 0, len(d.joined))
	for n := range d.joined {
		joined = append(joined, n)
	}
	d.joinedMu.Unlock()
	for _, n := range joined {
		if _, ok, err := d.reg.Lookup(ctx, n, hotkey); ok && err == nil {
			return registered, true
		}
	}
	return unregistered, true
}

// registryTimeout bounds a registration lookup made for a peer's request.
const registryTimeout = 5 * time.Second
