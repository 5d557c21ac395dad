package node

import (
	"bytes"
	"encoding/hex"
	"testing"

	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// secpVector is a known answer: a public key, the message and an ECDSA
// signature over its SHA-256, DER-encoded, made by an implementation
// other than decred's and libsecp256k1.
type secpVector struct {
	key, msg, sig string // key and sig in hex; msg as made by vectorMessage
}

// vectorMessage is the message of a vector: "" and "cybertensor" as they
// are, "bytes(range(256))*4" the 1,024 bytes 0, 1, ..., 255 four times,
// "gossip message N" as it is.
func vectorMessage(m string) []byte {
	if m == "bytes(range(256))*4" {
		b := make([]byte, 1024)
		for i := range b {
			b[i] = byte(i)
		}
		return b
	}
	return []byte(m)
}

// secpVectors were made with Python 3's cryptography package 48.0.0
// (OpenSSL 3.0.19 underneath) by this program, its signatures randomized
// (so each run gives others; these are one run's):
//
//	import hashlib
//	from cryptography.hazmat.primitives import hashes, serialization
//	from cryptography.hazmat.primitives.asymmetric import ec
//	n = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141
//	msgs = [b"", b"cybertensor", bytes(range(256)) * 4]
//	for i, m in enumerate(msgs * 2):
//	    d = int.from_bytes(hashlib.sha256(b"cybertensor known answer %d" % i).digest(), "big") % n
//	    k = ec.derive_private_key(d, ec.SECP256K1())
//	    pub = k.public_key().public_bytes(serialization.Encoding.X962, serialization.PublicFormat.CompressedPoint)
//	    print(pub.hex(), m, k.sign(m, ec.ECDSA(hashes.SHA256())).hex())
//
// (the uncompressed keys with PublicFormat.UncompressedPoint), and with
// OpenSSL 3.0.19's command line:
//
//	openssl ecparam -name secp256k1 -genkey -noout -out k.pem
//	openssl ec -in k.pem -pubout -conv_form compressed -outform DER | tail -c 33 | xxd -p -c 200
//	for i in 1 2 3 4; do printf 'gossip message %d' $i > m; openssl dgst -sha256 -sign k.pem m | xxd -p -c 200; done
//
// Neither makes s low: most of these have a high s, which go-libp2p
// accepts.
var secpVectors = []secpVector{
	// Python cryptography.
	{"039ca0d918786185608572a59c15caa60ddfe691d074b9ddfc992207c7304082dc", "",
		"3046022100ba614b22ca328e0a7cd5654c33cc3acbc9ac6d7cbbe691c0045a25539774e17d022100b3e036566e76bf5aca59e6c949e8a264dd701ce2e59aa31aa825516f0d7d4a56"},
	{"03171251b430f4660496a60504e7ea1daa68d4d7b76e02141606ee98a15194eb31", "cybertensor",
		"3046022100af513396689a90f65aee95463be5b7525f401d46978c1035359d1715b5c7373b022100963f162046e2b40af85e887d7ce926d3095d77034adab2a52acc2fdc1306c87e"},
	{"03e16d33df2f8fea4d90ab95cfdf2e42829bb3034c64035e5ecfe0d6ed0bfcf48a", "bytes(range(256))*4",
		"3044022043d65edae611894b8f0ecdde38fd9b00a86f3296901b50c95f2d58e7fe0dc6a6022050c1723f0fd6fb3237dd6597ea6caac13209103804918ca86bf800b5c207998a"},
	{"04e16d33df2f8fea4d90ab95cfdf2e42829bb3034c64035e5ecfe0d6ed0bfcf48a4e138b4e0ae60bb6e8b5d03ba8861ca30c1d2471a5cbc4f4a17e507ff2b7640b", "bytes(range(256))*4",
		"3044022043d65edae611894b8f0ecdde38fd9b00a86f3296901b50c95f2d58e7fe0dc6a6022050c1723f0fd6fb3237dd6597ea6caac13209103804918ca86bf800b5c207998a"},
	{"02f7a5dbd448513ed27212ac73f521fdba3f77132696d591059123915f66d70e31", "",
		"3046022100adbba38c81ebd81fbfe554ce0aa3cf9cb7d22bfa66c8220a1f5d45993d9ceaf902210081dc1285e197c0f46c07b4c8ce3fd5c59b380f6cea0ebfe9573169caa3d5bde5"},
	{"02e7493bd6896fda152c491caf22134373940d98430f61c009cfe9fa188b75fb27", "cybertensor",
		"304402207dda73463325358b2493ea0708a429f61c6401b6c5297fba88be019711267558022012a624d4361b6542ded4cf3ef12566f76be690a269fcc9d1be77f6489d7fd1b0"},
	{"0245c53e3fdc8265a6783d36a28e66699642a14c20eea7105ade0182627d0f7811", "bytes(range(256))*4",
		"304502200e6d7a33ec023e1cb1c4f4203aceb36ddce84e86c373dff66a2e2b3a0aa4816d0221009dba6ae2fbb07efb28ac12d1623ad92dd86ebab66071b075bf6b2bc5e66a50b0"},
	{"0445c53e3fdc8265a6783d36a28e66699642a14c20eea7105ade0182627d0f78112d7464bc70372699e983a67c484c1600b81f550e00093c5d6ada59cd387413e0", "bytes(range(256))*4",
		"304502200e6d7a33ec023e1cb1c4f4203aceb36ddce84e86c373dff66a2e2b3a0aa4816d0221009dba6ae2fbb07efb28ac12d1623ad92dd86ebab66071b075bf6b2bc5e66a50b0"},
	// OpenSSL's command line.
	{"039b3f11e28aaaca578c218a1623eae7d5c13dca540dd656472c8850677be1a7a7", "gossip message 1",
		"30460221009fad5bd1cf3363932ff17e2b0168a5221de47e9de47644d5229bfe3a636e7772022100d7ea7a305f3fa6688da9a406ba5d6a3a73ce867dbe300154e2ccf1d6abd4302a"},
	{"039b3f11e28aaaca578c218a1623eae7d5c13dca540dd656472c8850677be1a7a7", "gossip message 2",
		"304602210088df91f9393879135a18abcc9147a3052e3f962acc118257d053be9ed9a28062022100aa4737749cfd1482ad501bda72abcf58e0baa916ac2c1420fc3d2b341a922f1d"},
	{"039b3f11e28aaaca578c218a1623eae7d5c13dca540dd656472c8850677be1a7a7", "gossip message 3",
		"30460221009829e822de47721ddf45bede201b623d86621891f15b1294e2e40d2c8cf00427022100c8ff34acc43a671e6a69586071f54b9922eff37313b64c5596041d31a5622654"},
	{"039b3f11e28aaaca578c218a1623eae7d5c13dca540dd656472c8850677be1a7a7", "gossip message 4",
		"3046022100bd43d5785393a06c8a381f3619d9c7f8958ae0b3cc9b9bb5536f652f6dcbeb8d022100b69d7349e9df3a790fbe21b3295ff000ccdad7ae03e99409d001a94e15c2158d"},
}

// TestSecp256k1KnownAnswers checks that go-libp2p's key and the registered
// one (ours, with cgo) accept each vector, high s or low, and refuse it
// with the message, r or s altered, or with another vector's key.
func TestSecp256k1KnownAnswers(t *testing.T) {
	high, low := 0, 0
	for i, v := range secpVectors {
		raw, _ := hex.DecodeString(v.key)
		sig, _ := hex.DecodeString(v.sig)
		msg := vectorMessage(v.msg)
		ds, err := decdsa.ParseDERSignature(sig)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if s := ds.S(); s.IsOverHalfOrder() {
			high++
		} else {
			low++
		}
		lk, err := crypto.UnmarshalSecp256k1PublicKey(raw)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		rk, err := crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1](raw)
		if err != nil {
			t.Fatalf("vector %d: %v", i, err)
		}
		if !isRegisteredSecpKey(rk) {
			t.Fatalf("vector %d: a %T", i, rk)
		}
		// The next vector's key that is another point.
		var other []byte
		var otherKey crypto.PubKey
		for j := i + 1; otherKey == nil || otherKey.Equals(lk); j++ {
			other, _ = hex.DecodeString(secpVectors[j%len(secpVectors)].key)
			if otherKey, err = crypto.UnmarshalSecp256k1PublicKey(other); err != nil {
				t.Fatal(err)
			}
		}
		otherReg, _ := crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1](other)
		rLen := int(sig[3])
		flipped := []byte{1}
		if len(msg) > 0 {
			flipped = flipBit(msg, 8*len(msg)-1)
		}
		for _, c := range []struct {
			name string
			msg  []byte
			sig  []byte
			keys [2]crypto.PubKey
			want bool
		}{
			{"as made", msg, sig, [2]crypto.PubKey{lk, rk}, true},
			{"message plus a byte", append(bytes.Clone(msg), 0), sig, [2]crypto.PubKey{lk, rk}, false},
			{"message's last bit", flipped, sig, [2]crypto.PubKey{lk, rk}, false},
			{"r's last bit", msg, flipBit(sig, 8*(4+rLen)-1), [2]crypto.PubKey{lk, rk}, false},
			{"s's last bit", msg, flipBit(sig, 8*len(sig)-1), [2]crypto.PubKey{lk, rk}, false},
			{"another key", msg, sig, [2]crypto.PubKey{otherKey, otherReg}, false},
		} {
			for j, k := range c.keys {
				ok, err := k.Verify(c.msg, c.sig)
				if ok != c.want || err != nil {
					t.Errorf("vector %d, %s, %s: %v, %v; want %v", i, c.name, []string{"go-libp2p", "registered"}[j], ok, err, c.want)
				}
			}
		}
	}
	if high == 0 || low == 0 {
		t.Errorf("%d vectors with a high s and %d with a low one: want some of each", high, low)
	}
	t.Logf("%d vectors, %d with a high s", len(secpVectors), high)
}

// flipBit is b with bit i (from the first byte's most significant) flipped.
func flipBit(b []byte, i int) []byte {
	b = bytes.Clone(b)
	b[i/8] ^= 0x80 >> (i % 8)
	return b
}
