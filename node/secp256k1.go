package node

import (
	"crypto/sha256"
	"fmt"
	"sync"

	dsecp "github.com/decred/dcrd/dcrec/secp256k1/v4"
	decdsa "github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	"github.com/libp2p/go-libp2p/core/crypto"
	cryptopb "github.com/libp2p/go-libp2p/core/crypto/pb"
	voi "gitlab.com/yawning/secp256k1-voi"
	"gitlab.com/yawning/secp256k1-voi/secec"
)

// Every hotkey is a secp256k1 key, and a neuron verifies secp256k1
// signatures all the time: the author's signature on every gossip message
// it receives (go-libp2p-pubsub, once per message per host), handshakes,
// signed peer records. go-libp2p parses the key out of the peer ID each
// time (a point decompression) and verifies with decred's secp256k1.
//
// Importing this package registers, for the whole process, a secp256k1
// public key unmarshaller that keeps the keys it parsed (bounded) and
// verifies with gitlab.com/yawning/secp256k1-voi (64-bit limbs, a
// precomputed base-point table; about 30% faster here). It accepts exactly
// what go-libp2p's key accepts: the key is parsed by go-libp2p's own
// unmarshaller (same formats, same errors), the signature by decred's
// strict DER parser (so r and s are in [1, n)), and both libraries then
// run the standard ECDSA check, x(u1·G + u2·Q) mod n = r, on the SHA-256 of
// the data. TestSecp256k1VerifyAgreesWithLibp2p and a fuzz target compare
// the two on good, altered and foreign signatures.
func init() {
	crypto.PubKeyUnmarshallers[cryptopb.KeyType_Secp256k1] = unmarshalSecp256k1PublicKey
}

// secp256k1PublicKey is go-libp2p's secp256k1 public key (its Raw, Type
// and Equals) with a faster Verify.
type secp256k1PublicKey struct {
	crypto.Secp256k1PublicKey
	fast *secec.PublicKey
}

// Verify checks a DER-encoded ECDSA signature over SHA-256(data).
func (k *secp256k1PublicKey) Verify(data, sig []byte) (ok bool, err error) {
	defer func() {
		if r := recover(); r != nil {
			ok, err = false, fmt.Errorf("secp256k1 signature verification panicked: %v", r)
		}
	}()
	s, err := decdsa.ParseDERSignature(sig)
	if err != nil {
		return false, err
	}
	rb, sb := s.R(), s.S()
	rBytes, sBytes := rb.Bytes(), sb.Bytes()
	r, err := voi.NewScalarFromCanonicalBytes(&rBytes)
	if err != nil {
		return false, err
	}
	ss, err := voi.NewScalarFromCanonicalBytes(&sBytes)
	if err != nil {
		return false, err
	}
	hash := sha256.Sum256(data)
	return k.fast.VerifyRaw(hash[:], r, ss), nil
}

// parsedKeys keeps parsed public keys by their encoding: a neuron hears
// the same few hundred authors again and again.
var parsedKeys = struct {
	sync.Mutex
	m map[string]*secp256k1PublicKey
}{m: map[string]*secp256k1PublicKey{}}

// maxParsedKeys bounds parsedKeys (emptied when full) against a flood of
// new keys.
const maxParsedKeys = 8192

func unmarshalSecp256k1PublicKey(data []byte) (crypto.PubKey, error) {
	parsedKeys.Lock()
	k, ok := parsedKeys.m[string(data)]
	parsedKeys.Unlock()
	if ok {
		return k, nil
	}
	pk, err := crypto.UnmarshalSecp256k1PublicKey(data)
	if err != nil {
		return nil, err
	}
	lk, ok := pk.(*crypto.Secp256k1PublicKey)
	if !ok {
		return pk, nil
	}
	// Hand voi the point go-libp2p has already decompressed: the
	// uncompressed encoding needs only an on-curve check, not a second
	// square root.
	fast, err := secec.NewPublicKey((*dsecp.PublicKey)(lk).SerializeUncompressed())
	if err != nil {
		return pk, nil // go-libp2p's key, verifying as go-libp2p does
	}
	k = &secp256k1PublicKey{Secp256k1PublicKey: *lk, fast: fast}
	parsedKeys.Lock()
	if len(parsedKeys.m) >= maxParsedKeys {
		clear(parsedKeys.m)
	}
	parsedKeys.m[string(data)] = k
	parsedKeys.Unlock()
	return k, nil
}
