package wallet

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"

	"github.com/decred/dcrd/dcrec/secp256k1/v4"
	"github.com/decred/dcrd/dcrec/secp256k1/v4/ecdsa"
	libp2pcrypto "github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"golang.org/x/crypto/ripemd160" //nolint:staticcheck // Cosmos addresses are defined with RIPEMD-160.
)

// PrivateKeySize is the length of a raw secp256k1 private key.
const PrivateKeySize = 32

// PublicKeySize is the length of a compressed secp256k1 public key.
const PublicKeySize = 33

// SignatureSize is the length of a signature: r and s, 32 bytes each, big
// endian, with s in the lower half of the group order.
const SignatureSize = 64

// PrivateKey is a secp256k1 private key: a coldkey or a hotkey.
type PrivateKey struct {
	k *secp256k1.PrivateKey
}

// PublicKey is a secp256k1 public key.
type PublicKey struct {
	k *secp256k1.PublicKey
}

// PrivateKeyFromBytes returns the key for a 32-byte big-endian scalar. It
// rejects zero and values not below the group order.
func PrivateKeyFromBytes(b []byte) (*PrivateKey, error) {
	if len(b) != PrivateKeySize {
		return nil, fmt.Errorf("%w: private key is %d bytes, want %d", ErrInvalidKey, len(b), PrivateKeySize)
	}
	var s secp256k1.ModNScalar
	if overflow := s.SetByteSlice(b); overflow || s.IsZero() {
		return nil, fmt.Errorf("%w: private key out of range", ErrInvalidKey)
	}
	return &PrivateKey{k: secp256k1.NewPrivateKey(&s)}, nil
}

// GenerateKey returns a new key from crypto/rand (one not on any
// mnemonic: for throwaway identities; wallets derive theirs from one).
func GenerateKey() (*PrivateKey, error) {
	for {
		var b [PrivateKeySize]byte
		if _, err := rand.Read(b[:]); err != nil {
			return nil, fmt.Errorf("wallet: generating a key: %w", err)
		}
		if k, err := PrivateKeyFromBytes(b[:]); err == nil {
			return k, nil
		}
	}
}

// Bytes returns the 32-byte big-endian scalar. Handle it as a secret.
func (k *PrivateKey) Bytes() []byte { return k.k.Serialize() }

// PublicKey returns the key's public half.
func (k *PrivateKey) PublicKey() *PublicKey { return &PublicKey{k: k.k.PubKey()} }

// Sign signs SHA-256(data) deterministically (RFC 6979) and returns the
// 64-byte r||s signature with low s, the form Cosmos SDK uses. With cgo
// the signature is made by bitcoin-core's libsecp256k1 (in constant time;
// sign_libsecp.go), otherwise by decred's secp256k1; both give the same
// bytes.
//
// Sign is a primitive: callers sign domain-separated bytes (a transaction's
// sign bytes, or SignMessage's prefixed message) so that a signature made
// for one purpose can never be replayed for another.
func (k *PrivateKey) Sign(data []byte) []byte {
	digest := sha256.Sum256(data)
	return signDigest(k.k, &digest)
}

// signDigestPure signs a digest with decred's secp256k1 (RFC 6979 nonce,
// low s).
func signDigestPure(k *secp256k1.PrivateKey, digest *[32]byte) []byte {
	sig := ecdsa.Sign(k, digest[:])
	r, s := sig.R(), sig.S()
	out := make([]byte, SignatureSize)
	r.PutBytesUnchecked(out[:32])
	s.PutBytesUnchecked(out[32:])
	return out
}

// SignMessage signs an arbitrary user message. The message is prefixed with
// MessagePrefix and its length first, so the signature cannot be mistaken for
// a transaction signature.
func (k *PrivateKey) SignMessage(msg []byte) []byte { return k.Sign(messageSignBytes(msg)) }

// Libp2p returns the key as a libp2p private key. A neuron's libp2p host
// built from a hotkey with this key has the hotkey's PeerID.
func (k *PrivateKey) Libp2p() libp2pcrypto.PrivKey {
	return (*libp2pcrypto.Secp256k1PrivateKey)(secp256k1.PrivKeyFromBytes(k.Bytes()))
}

// PublicKeyFromBytes parses a 33-byte compressed public key.
func PublicKeyFromBytes(b []byte) (*PublicKey, error) {
	if len(b) != PublicKeySize {
		return nil, fmt.Errorf("%w: public key is %d bytes, want %d (compressed)", ErrInvalidKey, len(b), PublicKeySize)
	}
	pk, err := secp256k1.ParsePubKey(b)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", ErrInvalidKey, err)
	}
	return &PublicKey{k: pk}, nil
}

// ParsePublicKeyHex parses a hex-encoded compressed public key.
func ParsePublicKeyHex(s string) (*PublicKey, error) {
	b, err := hex.DecodeString(s)
	if err != nil {
		return nil, fmt.Errorf("%w: public key is not hex: %v", ErrInvalidKey, err)
	}
	return PublicKeyFromBytes(b)
}

// Bytes returns the 33-byte compressed encoding.
func (p *PublicKey) Bytes() []byte { return p.k.SerializeCompressed() }

// Hex returns the compressed encoding in lower-case hex.
func (p *PublicKey) Hex() string { return hex.EncodeToString(p.Bytes()) }

// Equal reports whether two public keys are the same point.
func (p *PublicKey) Equal(o *PublicKey) bool { return o != nil && p.k.IsEqual(o.k) }

// Address returns the Cosmos-style account address of the key:
// RIPEMD160(SHA256(compressed public key)).
func (p *PublicKey) Address() Address {
	sha := sha256.Sum256(p.Bytes())
	h := ripemd160.New()
	h.Write(sha[:])
	var a Address
	copy(a[:], h.Sum(nil))
	return a
}

// PeerID returns the libp2p peer ID of the key: what a libp2p host whose
// identity is the matching private key reports as its ID.
func (p *PublicKey) PeerID() peer.ID {
	pub := (*libp2pcrypto.Secp256k1PublicKey)(p.k)
	id, err := peer.IDFromPublicKey(pub)
	if err != nil {
		// Marshalling a valid secp256k1 key cannot fail.
		panic(fmt.Sprintf("wallet: peer ID of a valid key: %v", err))
	}
	return id
}

// Verify reports whether sig is a valid signature by this key of data, as
// made by Sign. Signatures with a high s value are rejected, so a valid
// signature has exactly one encoding.
func (p *PublicKey) Verify(data, sig []byte) bool {
	if len(sig) != SignatureSize {
		return false
	}
	var r, s secp256k1.ModNScalar
	if r.SetByteSlice(sig[:32]) || s.SetByteSlice(sig[32:]) || r.IsZero() || s.IsZero() || s.IsOverHalfOrder() {
		return false
	}
	digest := sha256.Sum256(data)
	return ecdsa.NewSignature(&r, &s).Verify(digest[:], p.k)
}

// VerifyMessage reports whether sig is a valid SignMessage signature of msg.
func (p *PublicKey) VerifyMessage(msg, sig []byte) bool {
	return p.Verify(messageSignBytes(msg), sig)
}

// MessagePrefix starts the bytes signed by SignMessage, followed by the
// message length in decimal, a newline and the message.
const MessagePrefix = "\x19cybertensor signed message:\n"

func messageSignBytes(msg []byte) []byte {
	out := make([]byte, 0, len(MessagePrefix)+24+len(msg))
	out = append(out, MessagePrefix...)
	out = fmt.Appendf(out, "%d\n", len(msg))
	return append(out, msg...)
}
