package neuron

import (
	"maps"
	"sync"
	"sync/atomic"

	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/wallet"
)

// registrar is a host that holds peers not registered on the chain to
// smaller limits once told who is (node.Node).
type registrar interface {
	SetRegistered(func(peer.ID) bool)
}

// registeredHotkeys is the set of hotkeys registered on the swarm's subnet,
// as of the last metagraph, and which of them serve an axon, answering the
// host's admission check at once: a peer's hotkey address is derived from
// its peer ID (which carries the public key) and kept, boundedly.
type registeredHotkeys struct {
	set atomic.Pointer[map[wallet.Address]bool] // hotkey -> serves an axon

	mu    sync.Mutex
	addrs map[peer.ID]wallet.Address // peer ID -> hotkey address; bounded
}

// maxCachedAddrs bounds registeredHotkeys' cache of derived addresses
// (emptied when full: anyone can make keys and dial).
const maxCachedAddrs = 8192

// update replaces the set with the metagraph's hotkeys, and reports
// whether it changed (a hotkey came or went, or began or stopped serving
// an axon).
func (r *registeredHotkeys) update(mg *chain.Metagraph) bool {
	next := make(map[wallet.Address]bool, len(mg.Hotkeys))
	for uid, h := range mg.Hotkeys {
		next[h] = next[h] || (uid < len(mg.Axons) && mg.Axons[uid] != nil)
	}
	if prev := r.set.Load(); prev != nil && maps.Equal(*prev, next) {
		return false
	}
	r.set.Store(&next)
	return true
}

// size is how many hotkeys the set holds (0 before the first update).
func (r *registeredHotkeys) size() int {
	if set := r.set.Load(); set != nil {
		return len(*set)
	}
	return 0
}

// servingNone counts the hotkeys in the set that serve no axon: the
// subnet's validators (and any member yet to serve one).
func (r *registeredHotkeys) servingNone() int {
	set := r.set.Load()
	if set == nil {
		return 0
	}
	n := 0
	for h, axon := range *set {
		if !axon && h != (wallet.Address{}) {
			n++
		}
	}
	return n
}

// registered reports whether p's hotkey is in the set.
func (r *registeredHotkeys) registered(p peer.ID) bool {
	if r.set.Load() == nil {
		return true
	}
	member, _ := r.member(p)
	return member
}

// member reports whether p's hotkey is in the set (false before the first
// update), and whether it serves an axon.
func (r *registeredHotkeys) member(p peer.ID) (member, axon bool) {
	set := r.set.Load()
	if set == nil {
		return false, false
	}
	r.mu.Lock()
	addr, ok := r.addrs[p]
	r.mu.Unlock()
	if !ok {
		a, err := protocol.HotkeyAddress(p)
		if err != nil {
			return false, false // not a secp256k1 hotkey: never registered
		}
		addr = a
		r.mu.Lock()
		if r.addrs == nil || len(r.addrs) >= maxCachedAddrs {
			r.addrs = make(map[peer.ID]wallet.Address)
		}
		r.addrs[p] = addr
		r.mu.Unlock()
	}
	axon, member = (*set)[addr]
	return member, axon
}
