package neuron

import (
	"slices"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/wallet"
)

// The host's admission check: everyone until the first metagraph, then the
// metagraph's hotkeys (found from the peer ID's key), never a peer whose ID
// carries no secp256k1 key; an unchanged metagraph is no change; the cache
// of derived addresses stays bounded under a flood of fresh keys.
func TestRegisteredHotkeys(t *testing.T) {
	var r registeredHotkeys
	a, b := testKey(t, "adm", 1), testKey(t, "adm", 2)
	if !r.registered(b.PublicKey().PeerID()) {
		t.Fatal("before any metagraph a peer counts as unregistered")
	}
	mg := &chain.Metagraph{Hotkeys: []wallet.Address{a.PublicKey().Address()}}
	if !r.update(mg) {
		t.Fatal("the first metagraph is not a change")
	}
	if r.update(&chain.Metagraph{Hotkeys: []wallet.Address{a.PublicKey().Address()}}) {
		t.Fatal("the same hotkeys again counted as a change")
	}
	if !r.registered(a.PublicKey().PeerID()) || r.registered(b.PublicKey().PeerID()) {
		t.Fatal("want a registered and b not")
	}
	_, edPub, err := crypto.GenerateEd25519Key(nil)
	if err != nil {
		t.Fatal(err)
	}
	ed, err := peer.IDFromPublicKey(edPub)
	if err != nil {
		t.Fatal(err)
	}
	if r.registered(ed) {
		t.Fatal("a peer without a secp256k1 key counts as registered")
	}
	for i := range maxCachedAddrs + 10 {
		r.registered(testKey(t, "flood", i).PublicKey().PeerID())
	}
	if n := len(r.addrs); n > maxCachedAddrs {
		t.Fatalf("%d addresses cached, more than %d", n, maxCachedAddrs)
	}
	if !r.registered(a.PublicKey().PeerID()) {
		t.Fatal("after the flood a is no longer registered")
	}
}

// The gossip peer set: members of one kind always gossip; a miner gossips
// with exactly perMiner of the validators (all of them if fewer), the
// same ones whichever end asks; validators share the miners about evenly;
// a non-member, a set not read yet or perMiner 0 changes nothing; and the
// choice follows the hotkeys alone, not their uids.
func TestGossipPair(t *testing.T) {
	const validators, miners, perMiner = 32, 224, 8
	mg := &chain.Metagraph{}
	var vs, ms []peer.ID
	for i := range validators + miners {
		k := testKey(t, "gossip pair", i)
		mg.Hotkeys = append(mg.Hotkeys, k.PublicKey().Address())
		var axon *chain.Axon
		if i >= validators {
			axon = &chain.Axon{}
			ms = append(ms, k.PublicKey().PeerID())
		} else {
			vs = append(vs, k.PublicKey().PeerID())
		}
		mg.Axons = append(mg.Axons, axon)
	}
	var r registeredHotkeys
	outsider := testKey(t, "gossip pair outsider", 0).PublicKey().PeerID()
	if !r.gossipPair(vs[0], ms[0], perMiner) {
		t.Fatal("before any metagraph a validator and a miner do not gossip")
	}
	r.update(mg)
	for _, same := range [][2]peer.ID{{vs[0], vs[1]}, {ms[0], ms[1]}, {vs[0], outsider}, {ms[0], outsider}} {
		if !r.gossipPair(same[0], same[1], perMiner) {
			t.Fatalf("%s and %s do not gossip", same[0].ShortString(), same[1].ShortString())
		}
	}
	perValidator := make(map[peer.ID]int)
	for _, m := range ms {
		n := 0
		for _, v := range vs {
			got := r.gossipPair(v, m, perMiner)
			if got != r.gossipPair(m, v, perMiner) {
				t.Fatalf("validator %s and miner %s disagree", v.ShortString(), m.ShortString())
			}
			if !r.gossipPair(v, m, 0) {
				t.Fatal("perMiner 0 refuses a pair")
			}
			if got {
				n++
				perValidator[v]++
			}
		}
		if n != perMiner {
			t.Fatalf("miner %s gossips with %d validators, want %d", m.ShortString(), n, perMiner)
		}
	}
	// 224 × 8 / 32 = 56 a validator on average; a hash's spread stays
	// within half of that either way.
	for _, v := range vs {
		if n := perValidator[v]; n < 28 || n > 84 {
			t.Errorf("validator %s gossips with %d miners, expected about 56", v.ShortString(), n)
		}
	}
	// The same hotkeys in another order (other uids): the same pairs.
	shuffled := &chain.Metagraph{Hotkeys: slices.Clone(mg.Hotkeys), Axons: slices.Clone(mg.Axons)}
	slices.Reverse(shuffled.Hotkeys)
	slices.Reverse(shuffled.Axons)
	var r2 registeredHotkeys
	r2.update(shuffled)
	for _, m := range ms[:16] {
		for _, v := range vs {
			if r.gossipPair(v, m, perMiner) != r2.gossipPair(v, m, perMiner) {
				t.Fatalf("the pair %s–%s depends on the uids", v.ShortString(), m.ShortString())
			}
		}
	}
	// With no more validators than perMiner, every pair gossips.
	small := &chain.Metagraph{Hotkeys: slices.Clone(mg.Hotkeys[validators-perMiner : validators+4]), Axons: slices.Clone(mg.Axons[validators-perMiner : validators+4])}
	var r3 registeredHotkeys
	r3.update(small)
	for _, v := range vs[validators-perMiner:] {
		for _, m := range ms[:4] {
			if !r3.gossipPair(v, m, perMiner) {
				t.Fatalf("%d validators, %d a miner: the pair %s–%s does not gossip", perMiner, perMiner, v.ShortString(), m.ShortString())
			}
		}
	}
}
