package neuron

import (
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
