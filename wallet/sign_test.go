package wallet

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"math/rand/v2"
	"testing"
)

// signVectors are deterministic ECDSA (RFC 6979) signatures over
// secp256k1 with SHA-256, as r||s with low s, from a third implementation
// (the vectors first posted on bitcointalk.org, topic 285142, and carried
// by bitcoinjs and noble-secp256k1's test suites): neither decred nor
// libsecp256k1 made them.
var signVectors = []struct{ key, message, signature string }{
	{"0000000000000000000000000000000000000000000000000000000000000001", "Satoshi Nakamoto",
		"934b1ea10a4b3c1757e2b0c017d0b6143ce3c9a7e6a4a49860d7a6ab210ee3d82442ce9d2b916064108014783e923ec36b49743e2ffa1c4496f01a512aafd9e5"},
	{"0000000000000000000000000000000000000000000000000000000000000001", "All those moments will be lost in time, like tears in rain. Time to die...",
		"8600dbd41e348fe5c9465ab92d23e3db8b98b873beecd930736488696438cb6b547fe64427496db33bf66019dacbf0039c04199abb0122918601db38a72cfc21"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "Satoshi Nakamoto",
		"fd567d121db66e382991534ada77a6bd3106f0a1098c231e47993447cd6af2d06b39cd0eb1bc8603e159ef5c20a5c8ad685a45b06ce9bebed3f153d10d93bed5"},
	{"f8b8af8ce3c7cca5e300d33939540c10d45ce001b8f252bfbc57ba0342904181", "Alan Turing",
		"7063ae83e7f62bbb171798131b4a0564b956930092b33b07b395615d9ec7e15c58dfcc1e00a35e1572f366ffe34ba0fc47db1e7189759b9fb233c5b05ab388ea"},
	{"e91671c46231f833a6406ccbea0e3e392c76c167bac1cb013f6f1013980455c2",
		"There is a computer disease that anybody who works with computers knows about. It's a very serious disease and it interferes completely with the work. The trouble with computers is that you 'play' with them!",
		"b552edd27580141f3b2a5463048cb7cd3e047b97c9f98076c32dbdf85a68718b279fa72dd19bfae05577e06c7c0c1900c371fcd5893f7e1d56a37d30174671f6"},
	{"0000000000000000000000000000000000000000000000000000000000000001", "Everything should be made as simple as possible, but not simpler.",
		"33a69cd2065432a30f3d1ce4eb0d59b8ab58c74f27c41a7fdb5696ad4e6108c96f807982866f785d3f6418d24163ddae117b7db4d5fdf0071de069fa54342262"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
		"Equations are more important to me, because politics is for the present, but an equation is something for eternity.",
		"54c4a33c6423d689378f160a7ff8b61330444abb58fb470f96ea16d99d4a2fed07082304410efa6b2943111b6a4e0aaa7b7db55a07e9861d1fb3cb1f421044a5"},
	{"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140", "Not only is the Universe stranger than we think, it is stranger than we can think.",
		"ff466a9f1b7b273e2f4c3ffe032eb2e814121ed18ef84665d0f515360dab3dd06fc95f5132e5ecfdc8e5e6e616cc77151455d46ed48f5589b7db7771a332b283"},
}

// TestSignKnownAnswers checks Sign (libsecp256k1 with cgo) and decred's
// signing against the third implementation's signatures, and that each
// verifies.
func TestSignKnownAnswers(t *testing.T) {
	for _, v := range signVectors {
		raw, _ := hex.DecodeString(v.key)
		k, err := PrivateKeyFromBytes(raw)
		if err != nil {
			t.Fatalf("key %s: %v", v.key, err)
		}
		digest := sha256.Sum256([]byte(v.message))
		for name, sig := range map[string][]byte{"Sign": k.Sign([]byte(v.message)), "decred": signDigestPure(k.k, &digest)} {
			if got := hex.EncodeToString(sig); got != v.signature {
				t.Errorf("%s, key %s, %q:\n got %s\nwant %s", name, v.key, v.message, got, v.signature)
			}
			if !k.PublicKey().Verify([]byte(v.message), sig) {
				t.Errorf("%s, key %s, %q: the signature does not verify", name, v.key, v.message)
			}
		}
	}
}

// TestSignAgreesWithDecred signs random messages with random keys (and
// keys at the ends of the range) both ways: the bytes must be the same, s
// low, and the signature must verify, and not for another message.
func TestSignAgreesWithDecred(t *testing.T) {
	rng := rand.New(rand.NewPCG(7, 11))
	n := 2000
	if testing.Short() {
		n = 300
	}
	edge := []string{"0000000000000000000000000000000000000000000000000000000000000001",
		"0000000000000000000000000000000000000000000000000000000000000002",
		"fffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364140",
		"7fffffffffffffffffffffffffffffff5d576e7357a4501ddfe92f46681b20a0"}
	signed := 0
	for i := range n {
		var raw [PrivateKeySize]byte
		if i < len(edge) {
			hex.Decode(raw[:], []byte(edge[i]))
		} else {
			for j := range raw {
				raw[j] = byte(rng.Uint32())
			}
		}
		k, err := PrivateKeyFromBytes(raw[:])
		if err != nil {
			continue // zero or past the order: never a key
		}
		msg := make([]byte, rng.IntN(300))
		for j := range msg {
			msg[j] = byte(rng.Uint32())
		}
		digest := sha256.Sum256(msg)
		got, want := k.Sign(msg), signDigestPure(k.k, &digest)
		if !bytes.Equal(got, want) {
			t.Fatalf("key %x, message %x:\n Sign   %x\n decred %x", raw, msg, got, want)
		}
		if len(got) != SignatureSize || cap(got) != SignatureSize {
			t.Fatalf("signature of %d bytes (capacity %d)", len(got), cap(got))
		}
		if got[32] >= 0x80 {
			t.Fatalf("high s: %x", got)
		}
		if !k.PublicKey().Verify(msg, got) || k.PublicKey().Verify(append(msg, 0), got) {
			t.Fatalf("key %x, message %x: verification wrong", raw, msg)
		}
		signed++
	}
	if signed < n-1 {
		t.Fatalf("only %d of %d keys signed", signed, n)
	}
}

// BenchmarkSign compares Sign (libsecp256k1 with cgo) with decred's
// signing.
func BenchmarkSign(b *testing.B) {
	k, _ := PrivateKeyFromBytes(bytes.Repeat([]byte{7}, PrivateKeySize))
	msg := []byte("a receipt's sign bytes, about a hundred and fifty of them, hashed with SHA-256 first")
	b.Run("Sign", func(b *testing.B) {
		for b.Loop() {
			k.Sign(msg)
		}
	})
	b.Run("decred", func(b *testing.B) {
		for b.Loop() {
			digest := sha256.Sum256(msg)
			signDigestPure(k.k, &digest)
		}
	})
}
