package node

import (
	"crypto/sha256"
	"fmt"
	"reflect"
	"testing"

	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Every hotkey is a secp256k1 key. Its public keys (the author of each
// gossip message, taken from its peer ID; TLS certificates; signed
// records) are parsed and verified by go-libp2p's own code, decred's
// secp256k1: this package registers no unmarshaller of its own. Keeping
// parsed keys would save only the point decompression, 7-8% of a parse
// and verification (BenchmarkSecp256k1Verify).

// testSecpKey is a deterministic secp256k1 key pair.
func testSecpKey(t testing.TB, i int) (crypto.PrivKey, crypto.PubKey) {
	t.Helper()
	seed := sha256.Sum256(fmt.Appendf(nil, "secp256k1 test key %d", i))
	priv, err := crypto.UnmarshalSecp256k1PrivateKey(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	return priv, priv.GetPublic()
}

// The process parses secp256k1 keys with go-libp2p's unmarshaller: nothing
// this package links in has replaced it.
func TestSecp256k1UnmarshallerIsLibp2ps(t *testing.T) {
	got := reflect.ValueOf(crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1]).Pointer()
	if want := reflect.ValueOf(crypto.UnmarshalSecp256k1PublicKey).Pointer(); got != want {
		t.Fatal("the secp256k1 public key unmarshaller is not go-libp2p's")
	}
	_, pub := testSecpKey(t, 1)
	b, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.(*crypto.Secp256k1PublicKey); !ok || !k.Equals(pub) {
		t.Fatalf("unmarshalled %T, equal %v", k, k.Equals(pub))
	}
}

// A peer ID's key comes back as go-libp2p's key, equal to the signer's,
// and verifies the signer's signatures only.
func TestSecp256k1KeyFromPeerID(t *testing.T) {
	priv, pub := testSecpKey(t, 7)
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	k, err := id.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := k.(*crypto.Secp256k1PublicKey); !ok {
		t.Fatalf("the peer ID's key is a %T", k)
	}
	if !k.Equals(pub) || !pub.Equals(k) || !id.MatchesPublicKey(k) {
		t.Error("the peer ID's key is not the signer's")
	}
	data := []byte("gossip")
	sig, err := priv.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Verify(data, sig); !ok || err != nil {
		t.Errorf("a good signature was refused: %v", err)
	}
	if ok, _ := k.Verify([]byte("gossiq"), sig); ok {
		t.Error("a signature over other data was accepted")
	}
	other, _ := testSecpKey(t, 8)
	foreign, _ := other.Sign(data)
	if ok, _ := k.Verify(data, foreign); ok {
		t.Error("another key's signature was accepted")
	}
}
