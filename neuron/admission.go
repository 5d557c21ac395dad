package neuron

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
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
	addr, ok := r.address(p)
	if !ok {
		return false, false // not a secp256k1 hotkey: never registered
	}
	axon, member = (*set)[addr]
	return member, axon
}

// address is p's hotkey address, derived from its public key and cached;
// false if p is not a secp256k1 key.
func (r *registeredHotkeys) address(p peer.ID) (wallet.Address, bool) {
	r.mu.Lock()
	addr, ok := r.addrs[p]
	r.mu.Unlock()
	if ok {
		return addr, true
	}
	addr, err := protocol.HotkeyAddress(p)
	if err != nil {
		return wallet.Address{}, false
	}
	r.mu.Lock()
	if r.addrs == nil || len(r.addrs) >= maxCachedAddrs {
		r.addrs = make(map[peer.ID]wallet.Address)
	}
	r.addrs[p] = addr
	r.mu.Unlock()
	return addr, true
}

// gossipPair reports whether gossip runs between members a and b: always,
// unless one serves an axon and the other does not (a miner and a
// validator), in which case only if the validator is one of the miner's
// perMiner gossip validators, the subnet's validators with the smallest
// pairHash with it. Both ends of a pair compute the same answer from the
// same metagraph. A peer that is not a member (or a set not read yet, or
// perMiner 0) gossips as usual.
func (r *registeredHotkeys) gossipPair(a, b peer.ID, perMiner int) bool {
	set := r.set.Load()
	if perMiner <= 0 || set == nil {
		return true
	}
	addrA, okA := r.address(a)
	addrB, okB := r.address(b)
	if !okA || !okB {
		return true
	}
	axonA, memberA := (*set)[addrA]
	axonB, memberB := (*set)[addrB]
	if !memberA || !memberB || axonA == axonB {
		return true
	}
	validator, miner := addrA, addrB
	if axonA {
		validator, miner = addrB, addrA
	}
	mine := pairHash(validator, miner)
	closer := 0
	for h, axon := range *set {
		if axon || h == validator || h == (wallet.Address{}) {
			continue
		}
		if other := pairHash(h, miner); other < mine || (other == mine && bytes.Compare(h[:], validator[:]) < 0) {
			if closer++; closer >= perMiner {
				return false
			}
		}
	}
	return true
}

// pairHash orders a miner's validators for gossipPair: the first 8 bytes
// of SHA-256 over a label, the validator's and the miner's hotkey
// addresses.
func pairHash(validator, miner wallet.Address) uint64 {
	var b [len(pairLabel) + 2*wallet.AddressSize]byte
	n := copy(b[:], pairLabel)
	n += copy(b[n:], validator[:])
	copy(b[n:], miner[:])
	sum := sha256.Sum256(b[:])
	return binary.BigEndian.Uint64(sum[:8])
}

const pairLabel = "cybertensor/gossip-pair/1"
