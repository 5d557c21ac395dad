//go:build cgo && !gofuzz

package wallet

import (
	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	libsecp "github.com/ethereum/go-ethereum/crypto/secp256k1"
)

// signDigest signs a digest with bitcoin-core's libsecp256k1 (the copy
// go-ethereum vendors, as node's verification uses): the RFC 6979 nonce
// (secp256k1_nonce_function_rfc6979) and a low s, so the signature is the
// one decred's signing makes (TestSignAgreesWithDecred, and the known
// answers of a third implementation in TestSignKnownAnswers). libsecp256k1
// multiplies the nonce by the generator in constant time, where decred's
// Sign does not (ScalarBaseMultNonConst): a miner signs a receipt for
// every query anyone sends it, so the time a signature takes must not
// depend on its secret nonce. It is also faster: 33 µs a signature here
// against decred's 45-49 µs (BenchmarkSign).
func signDigest(k *secp256k1.PrivateKey, digest *[32]byte) []byte {
	var key [PrivateKeySize]byte
	k.Key.PutBytes(&key)
	sig, err := libsecp.Sign(digest[:], key[:])
	clear(key[:])
	if err != nil {
		// Unreachable for a key PrivateKeyFromBytes accepted; never sign
		// nothing.
		return signDigestPure(k, digest)
	}
	return sig[:SignatureSize:SignatureSize] // r||s; the last byte is the recovery id
}
