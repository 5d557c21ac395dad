//go:build !cgo || gofuzz

package wallet

import "github.com/decred/dcrd/dcrec/secp256k1/v4"

// signDigest signs a digest with decred's secp256k1: without cgo (or in a
// gofuzz build, where go-ethereum leaves libsecp256k1 out) there is no
// libsecp256k1 to call.
func signDigest(k *secp256k1.PrivateKey, digest *[32]byte) []byte {
	return signDigestPure(k, digest)
}
