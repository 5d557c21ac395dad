package protocol

import (
	"crypto/sha256"
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/crypto"
	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/protocol"

	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// QueryID is the stream protocol of queries between neurons.
const QueryID protocol.ID = "/cybertensor/query/1.0.0"

// Status is a query's outcome.
type Status = pb.Status

// Statuses, as on the wire.
const (
	StatusOK           = pb.Status_OK
	StatusBadRequest   = pb.Status_BAD_REQUEST
	StatusUnauthorized = pb.Status_UNAUTHORIZED
	StatusForbidden    = pb.Status_FORBIDDEN
	StatusNotFound     = pb.Status_NOT_FOUND
	StatusTimeout      = pb.Status_TIMEOUT
	StatusOverloaded   = pb.Status_OVERLOADED
	StatusInternal     = pb.Status_INTERNAL
	StatusUnavailable  = pb.Status_UNAVAILABLE
)

// Size limits of the query protocol.
const (
	// MaxRequestSize bounds an encoded request.
	MaxRequestSize = 1 << 20
	// MaxFrameSize bounds one encoded response frame.
	MaxFrameSize = 1<<20 + 4096
	// maxChunk is the most body a server puts in one frame.
	maxChunk = MaxFrameSize - 4096
	// maxIDLen bounds request IDs and synapse names.
	maxIDLen = 64
)

// StatusError is an error a handler returns to answer with a status other
// than INTERNAL.
type StatusError struct {
	Status  Status
	Message string
}

func (e *StatusError) Error() string { return e.Status.String() + ": " + e.Message }

// Errorf returns a *StatusError.
func Errorf(status Status, format string, args ...any) error {
	return &StatusError{Status: status, Message: fmt.Sprintf(format, args...)}
}

// receiptDomain prefixes the bytes a receipt signature covers.
const receiptDomain = "cybertensor-receipt/1\x00"

// receiptSignBytes is what a receipt's signature covers: the domain, both
// hashes, the server and client peer IDs (each length-prefixed) and the
// status.
func receiptSignBytes(r *pb.Receipt) []byte {
	b := []byte(receiptDomain)
	b = append(b, r.RequestHash...)
	b = append(b, r.ResponseHash...)
	for _, s := range []string{r.Server, r.Client} {
		b = append(b, byte(len(s)))
		b = append(b, s...)
	}
	return append(b, byte(r.Status))
}

// Errors of receipt verification.
var (
	ErrBadReceipt = errors.New("protocol: invalid receipt")
)

// VerifyReceipt checks a receipt's signature against the server's peer ID,
// whose public key is its hotkey: anyone can check what a miner answered.
func VerifyReceipt(r *pb.Receipt) error {
	if r == nil || len(r.RequestHash) != sha256.Size || len(r.ResponseHash) != sha256.Size {
		return fmt.Errorf("%w: missing or malformed hashes", ErrBadReceipt)
	}
	id, err := peer.Decode(r.Server)
	if err != nil {
		return fmt.Errorf("%w: server %q: %v", ErrBadReceipt, r.Server, err)
	}
	pub, err := hotkeyOf(id)
	if err != nil {
		return fmt.Errorf("%w: %v", ErrBadReceipt, err)
	}
	if !pub.Verify(receiptSignBytes(r), r.Signature) {
		return fmt.Errorf("%w: signature does not verify for %s", ErrBadReceipt, r.Server)
	}
	return nil
}

// hotkeyOf returns the hotkey behind a peer ID (neurons' peer IDs embed
// their secp256k1 public key).
func hotkeyOf(id peer.ID) (*wallet.PublicKey, error) {
	pk, err := id.ExtractPublicKey()
	if err != nil {
		return nil, fmt.Errorf("peer %s: no embedded public key: %w", id, err)
	}
	if pk.Type() != crypto.Secp256k1 {
		return nil, fmt.Errorf("peer %s: key type %s, not a secp256k1 hotkey", id, pk.Type())
	}
	raw, err := pk.Raw()
	if err != nil {
		return nil, err
	}
	return wallet.PublicKeyFromBytes(raw)
}

// HotkeyAddress returns the wallet address of the hotkey behind a peer ID.
func HotkeyAddress(id peer.ID) (wallet.Address, error) {
	pub, err := hotkeyOf(id)
	if err != nil {
		return wallet.Address{}, err
	}
	return pub.Address(), nil
}

// RequestHash is the hash a receipt names for an encoded request.
func RequestHash(raw []byte) []byte {
	h := sha256.Sum256(raw)
	return h[:]
}

// CheckReceipt verifies a receipt and that it names exactly this request
// (as encoded) and this response body.
func CheckReceipt(r *pb.Receipt, request, body []byte) error {
	if err := VerifyReceipt(r); err != nil {
		return err
	}
	rh := sha256.Sum256(body)
	if string(r.RequestHash) != string(RequestHash(request)) || string(r.ResponseHash) != string(rh[:]) {
		return fmt.Errorf("%w: hashes do not match the request and response", ErrBadReceipt)
	}
	return nil
}
