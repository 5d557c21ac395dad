//go:build cgo && !gofuzz

package node

import (
	"crypto/sha256"
	"fmt"
	"sync"

	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	libsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
)

// Every hotkey is a secp256k1 key, and a neuron verifies an ECDSA
// signature for every gossip message it receives (go-libp2p-pubsub checks
// the author's, once per message per host), besides handshakes and signed
// records. go-libp2p verifies with decred's pure-Go secp256k1, about
// 120 µs a signature here, a third of the CPU our router spends on a
// message.
//
// When cgo is available, importing this package registers for the whole
// process a secp256k1 public key unmarshaller whose keys verify with
// bitcoin-core's libsecp256k1 (the copy, v0.6.1, that go-ethereum vendors
// in github.com/ethereum/go-ethereum/crypto/secp256k1). Here a
// verification takes 31-33 µs against decred's 117-124 µs, and with the
// key parse go-libp2p-pubsub does for every message 41-44 µs against
// 125-132 µs (BenchmarkSecp256k1Verify); our router's CPU per message per
// host at 1,000 hosts fell by about a quarter. Without cgo (or in a gofuzz
// build, where go-ethereum leaves the package's C out) nothing is
// registered and go-libp2p's own code runs.
//
// The key accepts exactly what go-libp2p's key accepts:
//
//   - The key is go-libp2p's *crypto.Secp256k1PublicKey, parsed by
//     go-libp2p's own unmarshaller (same formats, same errors); its Raw,
//     Type and Equals are go-libp2p's. Only Verify differs.
//   - The signature is parsed by decred's strict DER parser, as go-libp2p
//     does, with the same refusals and errors: no trailing or missing
//     bytes, no padding, no negative numbers, r and s in [1, n).
//   - libsecp256k1 refuses a high s (s > n/2) where decred accepts it.
//     (r, n-s) is a valid signature exactly when (r, s) is (ECDSA's
//     malleability), so a high s is replaced by n-s before libsecp256k1
//     checks the signature, as libsecp256k1's documentation says to
//     (secp256k1_ecdsa_signature_normalize).
//   - Both libraries then run the standard ECDSA check on SHA-256 of the
//     data, read as a number mod n: x(u1·G + u2·Q) ≡ r (mod n).
//
// The tests compare the two on good signatures and their high-s twins,
// altered messages and r or s, foreign keys, malformed and non-canonical
// DER, empty and huge inputs (TestSecp256k1VerifyAgreesWithLibp2p and
// FuzzSecp256k1Verify); run go-libp2p's own secp256k1 key tests against
// this key; and check known answers made by OpenSSL and Python's
// cryptography package (secp256k1_vectors_test.go).
//
// One difference remains: go-libp2p's crypto.PubKeyToStdKey does not know
// this key's type and returns an error for it. Nothing linked here calls it.
func init() {
	crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = unmarshalSecp256k1PublicKey
}

// secp256k1PublicKey is go-libp2p's secp256k1 public key (its Raw, Type
// and Equals) verifying with libsecp256k1.
type secp256k1PublicKey struct {
	crypto.Secp256k1PublicKey
	// uncompressed is the key as libsecp256k1 parses it fastest: go-libp2p
	// has already decompressed the point.
	uncompressed [dsecp.PubKeyBytesLenUncompressed]byte
}

var _ crypto.PubKey = (*secp256k1PublicKey)(nil)

// unmarshalSecp256k1PublicKey parses a key with go-libp2p's unmarshaller,
// or returns the key parsed before from the same bytes (parsedKeys).
func unmarshalSecp256k1PublicKey(data []byte) (crypto.PubKey, error) {
	if k := parsedKeys.get(data); k != nil {
		return k, nil
	}
	pk, err := crypto.UnmarshalSecp256k1PublicKey(data)
	if err != nil {
		return nil, err
	}
	lk, ok := pk.(*crypto.Secp256k1PublicKey)
	if !ok {
		return pk, nil // not go-libp2p's key any more: keep its code
	}
	k := &secp256k1PublicKey{Secp256k1PublicKey: *lk}
	copy(k.uncompressed[:], (*dsecp.PublicKey)(lk).SerializeUncompressed())
	parsedKeys.put(data, k)
	return k, nil
}

// parsedKeys keeps the keys parsed lately by their bytes. A compressed key
// is a point to decompress (a square root mod p), about a quarter of the
// CPU of checking a signature, and a neuron parses its peers' keys again
// for every gossip message (go-libp2p-pubsub takes the author's key from
// its peer ID each time), every signed record and every handshake: in a
// 256-neuron localnet, 2% of the CPU. A key is immutable once parsed (its
// methods only read it), so callers can share one. Anyone can make keys,
// so the cache is bounded, and emptied when full.
var parsedKeys = keyCache{m: make(map[string]*secp256k1PublicKey)}

// maxParsedKeys bounds parsedKeys: a few times a full subnet's peers, about
// 600 KiB at most.
const maxParsedKeys = 4096

type keyCache struct {
	mu sync.Mutex
	m  map[string]*secp256k1PublicKey
}

func (c *keyCache) get(data []byte) *secp256k1PublicKey {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.m[string(data)]
}

func (c *keyCache) put(data []byte, k *secp256k1PublicKey) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if len(c.m) >= maxParsedKeys {
		clear(c.m)
	}
	c.m[string(data)] = k
}

func (c *keyCache) len() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return len(c.m)
}

// Verify checks a DER-encoded ECDSA signature over SHA-256(data), as
// go-libp2p's Verify does.
func (k *secp256k1PublicKey) Verify(data, sig []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("panic in secp256k1 signature verification: %v", r)
		}
	}()
	s, err := decdsa.ParseDERSignature(sig)
	if err != nil {
		return false, err
	}
	r, ss := s.R(), s.S()
	if ss.IsOverHalfOrder() {
		ss.Negate()
	}
	var compact [64]byte
	r.PutBytesUnchecked(compact[:32])
	ss.PutBytesUnchecked(compact[32:])
	hash := sha256.Sum256(data)
	return libsecp.VerifySignature(k.uncompressed[:], hash[:], compact[:]), nil
}
