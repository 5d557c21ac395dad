package metering

import (
	"errors"
	"fmt"

	"github.com/libp2p/go-libp2p/core/peer"
	"google.golang.org/protobuf/proto"

	"github.com/cybertensor/cybertensor/gateway"
	"github.com/cybertensor/cybertensor/protocol"
	"github.com/cybertensor/cybertensor/protocol/pb"
	"github.com/cybertensor/cybertensor/wallet"
)

// ErrNoReceipt is VerifyReceipt's error for an entry without a receipt.
var ErrNoReceipt = errors.New("metering: no receipt")

// VerifyReceipt checks the miner receipt a usage entry holds: it decodes
// it, verifies its signature against the server peer ID inside it
// (protocol.VerifyReceipt, protocol/SPEC.md §2.5), and checks that it is
// the entry's miner's: the signing peer is the entry's MinerPeer, whose
// hotkey is the entry's Miner, and the signed status is the entry's
// Status. Its errors wrap ErrNoReceipt or protocol.ErrBadReceipt.
//
// The receipt proves that the miner answered a request whose encoded
// bytes hash to its request_hash with a body hashing to its
// response_hash; the ledger does not keep the bodies, so matching them is
// for whoever holds them (protocol.CheckReceipt).
func VerifyReceipt(u gateway.Usage) (*pb.Receipt, error) {
	if len(u.Receipt) == 0 {
		return nil, ErrNoReceipt
	}
	if len(u.Receipt) > MaxReceiptSize {
		return nil, fmt.Errorf("%w: %d bytes", protocol.ErrBadReceipt, len(u.Receipt))
	}
	var r pb.Receipt
	if err := proto.Unmarshal(u.Receipt, &r); err != nil {
		return nil, fmt.Errorf("%w: %v", protocol.ErrBadReceipt, err)
	}
	if err := protocol.VerifyReceipt(&r); err != nil {
		return nil, err
	}
	if r.Server != u.MinerPeer {
		return nil, fmt.Errorf("%w: signed by %s, but the entry's miner peer is %q", protocol.ErrBadReceipt, r.Server, u.MinerPeer)
	}
	if u.Miner != "" {
		id, err := peer.Decode(r.Server)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", protocol.ErrBadReceipt, err)
		}
		hotkey, err := protocol.HotkeyAddress(id)
		if err != nil {
			return nil, fmt.Errorf("%w: %v", protocol.ErrBadReceipt, err)
		}
		miner, _, err := wallet.ParseAddress(u.Miner)
		if err != nil || miner != hotkey {
			return nil, fmt.Errorf("%w: signed by hotkey %s, but the entry's miner is %q", protocol.ErrBadReceipt, hotkey, u.Miner)
		}
	}
	if r.Status.String() != u.Status {
		return nil, fmt.Errorf("%w: signed status %s, but the entry's status is %q", protocol.ErrBadReceipt, r.Status, u.Status)
	}
	return &r, nil
}
