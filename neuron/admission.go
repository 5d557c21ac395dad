package neuron

import (
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
// as of the last metagraph, answering the host's admission check at once:
// a peer's hotkey address is derived from its peer ID (which carries the
// public key) and kept, boundedly.
type registeredHotkeys struct {
	set atomic.Pointer[map[wallet.Address]struct{}]

	mu    sync.Mutex
	addrs map[peer.ID]wallet.Address // peer ID -> hotkey address; bounded
}

// maxCachedAddrs bounds registeredHotkeys' cache of derived addresses
// (emptied when full: anyone can make keys and dial).
const maxCachedAddrs = 8192

// update replaces the set with the metagraph's hotkeys, and reports
// whether it changed.
func (r *registeredHotkeys) update(mg *chain.Metagraph) bool {
	next := make(map[wallet.Address]struct{}, len(mg.Hotkeys))
	for _, h := range mg.Hotkeys {
		next[h] = struct{}{}
	}
	if prev := r.set.Load(); prev != nil && len(*prev) == len(next) {
		same := true
		for h := range next {
			if _, ok := (*prev)[h]; !ok {
				same = false
				break
			}
		}
		if same {
			return false
		}
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

// registered reports whether p's hotkey is in the set.
func (r *registeredHotkeys) registered(p peer.ID) bool {
	set := r.set.Load()
	if set == nil {
		return true
	}
	r.mu.Lock()
	addr, ok := r.addrs[p]
	r.mu.Unlock()
	if !ok {
		a, err := protocol.HotkeyAddress(p)
		if err != nil {
			return false // not a secp256k1 hotkey: never registered
		}
		addr = a
		r.mu.Lock()
		if r.addrs == nil || len(r.addrs) >= maxCachedAddrs {
			r.addrs = make(map[peer.ID]wallet.Address)
		}
		r.addrs[p] = addr
		r.mu.Unlock()
	}
	_, ok = (*set)[addr]
	return ok
}
