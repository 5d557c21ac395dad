package node

import (
	"crypto/sha256"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
)

// testSecpKey is a deterministic secp256k1 key pair: go-libp2p's private
// key, go-libp2p's own public key (the reference) and ours.
func testSecpKey(t testing.TB, i int) (crypto.PrivKey, crypto.PubKey, crypto.PubKey) {
	t.Helper()
	seed := sha256.Sum256([]byte(fmt.Sprintf("secp256k1 test key %d", i)))
	priv, err := crypto.UnmarshalSecp256k1PrivateKey(seed[:])
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := priv.GetPublic().Raw()
	ref, err := crypto.UnmarshalSecp256k1PublicKey(raw)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := crypto.UnmarshalPublicKey(mustMarshal(t, priv.GetPublic()))
	if err != nil {
		t.Fatal(err)
	}
	if _, ok := ours.(*secp256k1PublicKey); !ok {
		t.Fatalf("the registered unmarshaller gave %T", ours)
	}
	return priv, ref, ours
}

func mustMarshal(t testing.TB, k crypto.PubKey) []byte {
	b, err := crypto.MarshalPublicKey(k)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// derSignature encodes (r, s) in DER as given, without canonicalizing s
// (decred's Serialize would make s low).
func derSignature(r, s *big.Int) []byte {
	enc := func(x *big.Int) []byte {
		b := x.Bytes()
		if len(b) == 0 || b[0]&0x80 != 0 {
			b = append([]byte{0}, b...)
		}
		return append([]byte{0x02, byte(len(b))}, b...)
	}
	body := append(enc(r), enc(s)...)
	return append([]byte{0x30, byte(len(body))}, body...)
}

// agree checks that our key and go-libp2p's give the same verdict on sig.
func agree(t *testing.T, what string, ref, ours crypto.PubKey, data, sig []byte) bool {
	t.Helper()
	want, werr := ref.Verify(data, sig)
	got, gerr := ours.Verify(data, sig)
	if got != want || (gerr == nil) != (werr == nil) {
		t.Fatalf("%s: go-libp2p says %v (%v), ours %v (%v)", what, want, werr, got, gerr)
	}
	return got
}

func TestSecp256k1VerifyAgreesWithLibp2p(t *testing.T) {
	r := rand.New(rand.NewPCG(3, 4))
	n := dsecp.S256().N
	accepted := 0
	for i := range 40 {
		priv, ref, ours := testSecpKey(t, i)
		_, otherRef, otherOurs := testSecpKey(t, i+1000)
		data := make([]byte, r.IntN(2048))
		for j := range data {
			data[j] = byte(r.Uint32())
		}
		sig, err := priv.Sign(data)
		if err != nil {
			t.Fatal(err)
		}
		if !agree(t, "good signature", ref, ours, data, sig) {
			t.Fatal("a good signature was refused")
		}
		accepted++
		agree(t, "another key", otherRef, otherOurs, data, sig)
		if len(data) > 0 {
			changed := append([]byte(nil), data...)
			changed[r.IntN(len(changed))] ^= byte(1 + r.IntN(255))
			agree(t, "changed data", ref, ours, changed, sig)
		}
		for range 8 {
			bad := append([]byte(nil), sig...)
			bad[r.IntN(len(bad))] ^= byte(1 << r.IntN(8))
			agree(t, "flipped bit", ref, ours, data, bad)
		}
		agree(t, "truncated", ref, ours, data, sig[:len(sig)-1])
		agree(t, "empty", ref, ours, data, nil)

		// The same signature with s replaced by n - s (high s) is valid
		// ECDSA; both must give the same verdict on it, and on r or s out
		// of range.
		parsed, err := decdsa.ParseDERSignature(sig)
		if err != nil {
			t.Fatal(err)
		}
		rs, ss := parsed.R(), parsed.S()
		rb, sb := rs.Bytes(), ss.Bytes()
		rInt, sInt := new(big.Int).SetBytes(rb[:]), new(big.Int).SetBytes(sb[:])
		agree(t, "high s", ref, ours, data, derSignature(rInt, new(big.Int).Sub(n, sInt)))
		agree(t, "s = n", ref, ours, data, derSignature(rInt, n))
		agree(t, "s = 0", ref, ours, data, derSignature(rInt, big.NewInt(0)))
		agree(t, "r + n", ref, ours, data, derSignature(new(big.Int).Add(rInt, n), sInt))
	}
	if accepted != 40 {
		t.Fatalf("accepted %d of 40", accepted)
	}
}

// A peer ID's key comes back as ours, equal to go-libp2p's both ways, and
// parsed once.
func TestSecp256k1KeyFromPeerID(t *testing.T) {
	priv, ref, _ := testSecpKey(t, 7)
	id, err := peer.IDFromPrivateKey(priv)
	if err != nil {
		t.Fatal(err)
	}
	a, err := id.ExtractPublicKey()
	if err != nil {
		t.Fatal(err)
	}
	b, _ := id.ExtractPublicKey()
	if a != b {
		t.Error("the same key was parsed twice")
	}
	if !a.Equals(ref) || !ref.Equals(a) || !id.MatchesPublicKey(a) {
		t.Error("our key is not equal to go-libp2p's")
	}
	if again, err := peer.IDFromPublicKey(a); err != nil || again != id {
		t.Errorf("peer ID of our key: %s %v", again, err)
	}
}

func FuzzSecp256k1Verify(f *testing.F) {
	priv, _, _ := testSecpKey(f, 1)
	sig, _ := priv.Sign([]byte("fuzz"))
	f.Add([]byte("fuzz"), sig, uint8(1))
	f.Add([]byte("fuzz"), sig, uint8(2))
	f.Add([]byte{}, []byte{0x30, 0}, uint8(0))
	f.Fuzz(func(t *testing.T, data, sig []byte, key uint8) {
		_, ref, ours := testSecpKey(t, int(key%4))
		agree(t, "fuzzed", ref, ours, data, sig)
	})
}
