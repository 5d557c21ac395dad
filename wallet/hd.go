package wallet

import (
	"crypto/hmac"
	"crypto/sha512"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
)

// This file implements BIP 32 private derivation for secp256k1.

const hardened = uint32(1) << 31

// errInvalidChild is BIP 32's "proceed with the next index" case, which has
// probability below 2^-127; we report it rather than silently skip.
var errInvalidChild = errors.New("derived key is invalid for this index")

// ParsePath parses a BIP 32 path such as m/44'/118'/0'/0/0 into indices;
// hardened components carry the 2^31 bit.
func ParsePath(path string) ([]uint32, error) {
	parts := strings.Split(path, "/")
	if len(parts) == 0 || parts[0] != "m" {
		return nil, fmt.Errorf("wallet: derivation path %q must start with m", path)
	}
	out := make([]uint32, 0, len(parts)-1)
	for _, p := range parts[1:] {
		h := strings.HasSuffix(p, "'") || strings.HasSuffix(p, "h")
		if h {
			p = p[:len(p)-1]
		}
		n, err := strconv.ParseUint(p, 10, 31)
		if err != nil {
			return nil, fmt.Errorf("wallet: derivation path %q: bad component %q", path, p)
		}
		idx := uint32(n)
		if h {
			idx |= hardened
		}
		out = append(out, idx)
	}
	return out, nil
}

// DerivePath derives the private key at path from a BIP 32 seed.
func DerivePath(seed []byte, path string) (*PrivateKey, error) {
	indices, err := ParsePath(path)
	if err != nil {
		return nil, err
	}
	mac := hmac.New(sha512.New, []byte("Bitcoin seed"))
	mac.Write(seed)
	I := mac.Sum(nil)
	var key secp256k1.ModNScalar
	if overflow := key.SetByteSlice(I[:32]); overflow || key.IsZero() {
		return nil, fmt.Errorf("wallet: master key: %w", errInvalidChild)
	}
	chain := append([]byte(nil), I[32:]...)
	for _, idx := range indices {
		key, chain, err = deriveChild(key, chain, idx)
		if err != nil {
			return nil, fmt.Errorf("wallet: derive %s: %w", path, err)
		}
	}
	return &PrivateKey{k: secp256k1.NewPrivateKey(&key)}, nil
}

func deriveChild(parent secp256k1.ModNScalar, chain []byte, idx uint32) (secp256k1.ModNScalar, []byte, error) {
	data := make([]byte, 0, 37)
	if idx&hardened != 0 {
		kb := parent.Bytes()
		data = append(data, 0)
		data = append(data, kb[:]...)
	} else {
		data = append(data, secp256k1.NewPrivateKey(&parent).PubKey().SerializeCompressed()...)
	}
	data = binary.BigEndian.AppendUint32(data, idx)
	mac := hmac.New(sha512.New, chain)
	mac.Write(data)
	I := mac.Sum(nil)
	var tweak secp256k1.ModNScalar
	if overflow := tweak.SetByteSlice(I[:32]); overflow {
		return parent, nil, errInvalidChild
	}
	child := tweak.Add(&parent)
	if child.IsZero() {
		return parent, nil, errInvalidChild
	}
	return *child, I[32:], nil
}
