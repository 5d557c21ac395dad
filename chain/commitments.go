package chain

import (
	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// MaxCommitmentLen bounds a commitment's data, as subtensor's commitments
// pallet bounds a commitment's fields.
const MaxCommitmentLen = 512

// Commitment is data a hotkey registered on a subnet published there: a
// CID of a knowledge object, a model identifier, an endpoint. The chain
// does not interpret it.
type Commitment struct {
	Data []byte `json:"data"`
	// Block is the block that set it; the subnet's commitment_rate_limit
	// counts from it.
	Block uint64 `json:"block"`
}

func (c *Commitment) clone() *Commitment {
	if c == nil {
		return nil
	}
	return &Commitment{Data: append([]byte(nil), c.Data...), Block: c.Block}
}

// CommitmentInfo is one hotkey's commitment on a subnet.
type CommitmentInfo struct {
	Netuid uint16  `json:"netuid"`
	UID    uint16  `json:"uid"`
	Hotkey Address `json:"hotkey"`
	Commitment
}

func (s *State) execSetCommitment(c *txContext, m *chainpb.SetCommitment) ([]Event, error) {
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	if hotkey != c.tx.Signer {
		return nil, txErr(ErrSignerNotHotkey, "signed by %s for hotkey %s", c.tx.Signer, hotkey)
	}
	if len(m.Data) == 0 || len(m.Data) > MaxCommitmentLen {
		return nil, txErr(ErrInvalidCommitment, "%d bytes (1 to %d)", len(m.Data), MaxCommitmentLen)
	}
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	uid, ok := sub.uids[hotkey]
	if !ok {
		return nil, txErr(ErrNotRegistered, "%s on netuid %d", hotkey, sub.Netuid)
	}
	n := sub.neurons[uid]
	if limit := sub.Params.CommitmentRateLimit; n.Commitment != nil && limit != 0 && s.height-n.Commitment.Block < limit {
		return nil, txErr(ErrCommitmentRateLimit, "committed at block %d, limit %d blocks: next at block %d", n.Commitment.Block, limit, n.Commitment.Block+limit)
	}
	if c.check {
		return nil, nil
	}
	n.Commitment = &Commitment{Data: append([]byte(nil), m.Data...), Block: s.height}
	s.markNeuron(sub.Netuid, uid)
	return []Event{event("commitment_set", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "hotkey", hotkey.String(), "bytes", u64s(uint64(len(m.Data))))}, nil
}

// Commitment returns hotkey's commitment on a subnet; ok is false if the
// hotkey holds no uid there or has committed nothing.
func (s *State) Commitment(netuid uint16, hotkey Address) (CommitmentInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return CommitmentInfo{}, false
	}
	uid, ok := sub.uids[hotkey]
	if !ok || sub.neurons[uid].Commitment == nil {
		return CommitmentInfo{}, false
	}
	return CommitmentInfo{Netuid: netuid, UID: uid, Hotkey: hotkey, Commitment: *sub.neurons[uid].Commitment.clone()}, true
}

// Commitments lists a subnet's commitments in uid order; ok is false if
// the subnet does not exist.
func (s *State) Commitments(netuid uint16) ([]CommitmentInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return nil, false
	}
	out := []CommitmentInfo{}
	for i, n := range sub.neurons {
		if n.Commitment != nil {
			out = append(out, CommitmentInfo{Netuid: netuid, UID: uint16(i), Hotkey: n.Hotkey, Commitment: *n.Commitment.clone()})
		}
	}
	return out, true
}
