package node

import (
	"bytes"
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"testing"

	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Every hotkey is a secp256k1 key. Its public keys (the author of each
// gossip message, taken from its peer ID; TLS certificates; signed
// records) are parsed by the unmarshaller registered for the process:
// with cgo, this package's (secp256k1.go: go-libp2p's key verifying with
// libsecp256k1), else go-libp2p's own. The tests in this file run against
// whichever is registered; secp256k1_libsecp_test.go compares ours with
// go-libp2p's, and secp256k1_vectors_test.go checks both on known answers.

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

// registeredKey is pub as the process parses it from the wire: marshalled,
// then unmarshalled by the registered unmarshaller. It fails the test if
// the key is not of the type this build registers.
func registeredKey(t testing.TB, pub crypto.PubKey) crypto.PubKey {
	t.Helper()
	b, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	k, err := crypto.UnmarshalPublicKey(b)
	if err != nil {
		t.Fatal(err)
	}
	if !isRegisteredSecpKey(k) {
		t.Fatalf("unmarshalled a %T", k)
	}
	return k
}

// A peer ID's key comes back as the registered key, equal to the signer's,
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
	if !isRegisteredSecpKey(k) {
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

// The tests below are go-libp2p's own secp256k1 key tests
// (core/crypto/secp256k1_test.go and the generic ones of key_test.go, in
// go-libp2p v0.51.0), run against the registered key.

func TestSecp256k1Libp2pBasicSignAndVerify(t *testing.T) {
	priv, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := registeredKey(t, pub)
	data := []byte("hello! and welcome to some awesome crypto primitives")
	sig, err := priv.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Verify(data, sig); err != nil || !ok {
		t.Fatalf("signature didn't match: %v", err)
	}
	data[0] = ^data[0]
	if ok, err := k.Verify(data, sig); err != nil || ok {
		t.Fatalf("signature matched and shouldn't (err %v)", err)
	}
}

func TestSecp256k1Libp2pSignZero(t *testing.T) {
	priv, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	data := make([]byte, 0)
	sig, err := priv.Sign(data)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := registeredKey(t, pub).Verify(data, sig); err != nil || !ok {
		t.Fatalf("signature didn't match: %v", err)
	}
}

func TestSecp256k1Libp2pMarshalLoop(t *testing.T) {
	_, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	pubB, err := crypto.MarshalPublicKey(pub)
	if err != nil {
		t.Fatal(err)
	}
	pubNew := registeredKey(t, pub)
	if !pub.Equals(pubNew) || !pubNew.Equals(pub) {
		t.Fatal("keys are not equal")
	}
	// key_test.go's testKeyEncoding: the unmarshalled key marshals back to
	// the same bytes.
	pubB2, err := crypto.MarshalPublicKey(pubNew)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(pubB, pubB2) {
		t.Errorf("marshal, unmarshal, marshal: %x, then %x", pubB, pubB2)
	}
	raw, _ := pub.Raw()
	raw2, _ := pubNew.Raw()
	if !bytes.Equal(raw, raw2) || pubNew.Type() != pub.Type() {
		t.Errorf("raw %x type %v, want %x %v", raw2, pubNew.Type(), raw, pub.Type())
	}
}

// key_test.go's testKeySignature and testKeyEquals.
func TestSecp256k1Libp2pKeySignatureAndEquals(t *testing.T) {
	priv, pub, err := crypto.GenerateSecp256k1Key(rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	k := registeredKey(t, pub)
	text := make([]byte, 16)
	if _, err := rand.Read(text); err != nil {
		t.Fatal(err)
	}
	sig, err := priv.Sign(text)
	if err != nil {
		t.Fatal(err)
	}
	if ok, err := k.Verify(text, sig); err != nil || !ok {
		t.Fatalf("invalid signature: %v", err)
	}
	if !crypto.KeyEqual(k, k) {
		t.Fatal("key not equal to itself")
	}
	rsaPriv, rsaPub, err := crypto.GenerateRSAKeyPair(2048, rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	_, otherPub, _ := crypto.GenerateSecp256k1Key(rand.Reader)
	for _, o := range []crypto.Key{rsaPriv, rsaPub, otherPub, registeredKey(t, otherPub), priv} {
		if crypto.KeyEqual(k, o) || k.Equals(o) {
			t.Errorf("key equal to a %T", o)
		}
	}
}

// key_test.go's TestKeyPairFromKey, secp256k1 case: a signature made by
// decred directly verifies with the key of KeyPairFromStdKey.
func TestSecp256k1Libp2pKeyPairFromKey(t *testing.T) {
	data := []byte(`hello world`)
	hashed := sha256.Sum256(data)
	privk, err := dsecp.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	sigK := decdsa.Sign(privk, hashed[:])
	priv, pub, err := crypto.KeyPairFromStdKey(privk)
	if err != nil {
		t.Fatal(err)
	}
	if priv.Type() != crypto.Secp256k1 {
		t.Fatalf("type %v", priv.Type())
	}
	if ok, err := registeredKey(t, pub).Verify(data, sigK.Serialize()); err != nil || !ok {
		t.Errorf("signature was not verified: %v", err)
	}
}
