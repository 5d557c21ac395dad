package chain

import (
	"crypto/sha256"
	"fmt"

	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// MaxTxSize bounds an encoded transaction.
const MaxTxSize = 64 << 10

// signDomain prefixes the body bytes a transaction signature covers.
const signDomain = "cybertensor-tx/1\x00"

// Tx is a decoded, signature-checked transaction.
type Tx struct {
	// Hash is SHA-256 of the encoded transaction.
	Hash [32]byte
	// Signer is the address of PublicKey.
	Signer    Address
	PublicKey *wallet.PublicKey
	Body      *chainpb.TxBody
}

// SignBytes returns the bytes a transaction signature covers.
func SignBytes(body []byte) []byte {
	return append([]byte(signDomain), body...)
}

// TxHash returns the hash that identifies an encoded transaction.
func TxHash(raw []byte) [32]byte { return sha256.Sum256(raw) }

// DecodeTx parses an encoded transaction and verifies its signature. It
// does not look at the state (chain ID, sequence): Apply does.
func DecodeTx(raw []byte) (*Tx, error) {
	if len(raw) > MaxTxSize {
		return nil, txErr(ErrTxTooLarge, "%d bytes > %d", len(raw), MaxTxSize)
	}
	var tr chainpb.TxRaw
	if err := proto.Unmarshal(raw, &tr); err != nil {
		return nil, txErr(ErrTxDecode, "%v", err)
	}
	pub, err := wallet.PublicKeyFromBytes(tr.PublicKey)
	if err != nil {
		return nil, txErr(ErrTxDecode, "public key: %v", err)
	}
	if !pub.Verify(SignBytes(tr.Body), tr.Signature) {
		return nil, txErr(ErrBadSignature, "by %s", pub.Address())
	}
	var body chainpb.TxBody
	if err := proto.Unmarshal(tr.Body, &body); err != nil {
		return nil, txErr(ErrTxDecode, "body: %v", err)
	}
	if body.Msg == nil || body.Msg.Sum == nil {
		return nil, txErr(ErrUnknownMessage, "empty message")
	}
	return &Tx{Hash: TxHash(raw), Signer: pub.Address(), PublicKey: pub, Body: &body}, nil
}

// SignTx builds and signs a transaction carrying msg.
func SignTx(key *wallet.PrivateKey, chainID string, sequence uint64, msg *chainpb.Msg) ([]byte, error) {
	body, err := proto.MarshalOptions{Deterministic: true}.Marshal(&chainpb.TxBody{ChainId: chainID, Sequence: sequence, Msg: msg})
	if err != nil {
		return nil, fmt.Errorf("chain: encoding tx body: %w", err)
	}
	raw, err := proto.MarshalOptions{Deterministic: true}.Marshal(&chainpb.TxRaw{
		Body: body, PublicKey: key.PublicKey().Bytes(), Signature: key.Sign(SignBytes(body)),
	})
	if err != nil {
		return nil, fmt.Errorf("chain: encoding tx: %w", err)
	}
	return raw, nil
}

// addressFrom converts a message's address field.
func addressFrom(field string, b []byte) (Address, error) {
	var a Address
	if len(b) != len(a) {
		return a, txErr(ErrInvalidAddress, "%s is %d bytes", field, len(b))
	}
	copy(a[:], b)
	return a, nil
}

// CommitHash is what commit_weights commits to: SHA-256 of the hotkey,
// netuid, uids, values, salt and version key, in that order, each integer
// big-endian (netuid and each uid and value as 2 bytes, version key as 8)
// and the uid and value lists and the salt each prefixed with their length
// as 4 bytes.
func CommitHash(hotkey Address, netuid uint16, uids, values []uint16, salt []byte, versionKey uint64) [32]byte {
	return sha256.Sum256(commitBytes(hotkey, netuid, uids, values, salt, versionKey))
}

func commitBytes(hotkey Address, netuid uint16, uids, values []uint16, salt []byte, versionKey uint64) []byte {
	b := make([]byte, 0, 20+2+8+4*len(uids)+4+len(salt)+8+1)
	b = append(b, hotkey[:]...)
	b = append(b, byte(netuid>>8), byte(netuid))
	b = appendU32(b, uint32(len(uids)))
	for _, u := range uids {
		b = append(b, byte(u>>8), byte(u))
	}
	b = appendU32(b, uint32(len(values)))
	for _, v := range values {
		b = append(b, byte(v>>8), byte(v))
	}
	b = appendU32(b, uint32(len(salt)))
	b = append(b, salt...)
	for i := 7; i >= 0; i-- {
		b = append(b, byte(versionKey>>(8*i)))
	}
	return b
}

// CommitHashMechanism is what commit_weights commits to for a mechanism:
// CommitHash's bytes for mechanism 0, and for another, those bytes
// followed by the mechanism as one byte (every earlier part is
// length-prefixed or fixed, so the two never collide).
func CommitHashMechanism(hotkey Address, netuid uint16, mechanism uint8, uids, values []uint16, salt []byte, versionKey uint64) [32]byte {
	if mechanism == 0 {
		return CommitHash(hotkey, netuid, uids, values, salt, versionKey)
	}
	b := commitBytes(hotkey, netuid, uids, values, salt, versionKey)
	return sha256.Sum256(append(b, mechanism))
}

func appendU32(b []byte, v uint32) []byte {
	return append(b, byte(v>>24), byte(v>>16), byte(v>>8), byte(v))
}
