package chain

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// This file holds a subnet's spec lifecycle: SetSubnetSpec makes a new
// spec hash pending, and the subnet's next epoch block (its tempo
// boundary, after that block's epoch) makes it the subnet's spec hash, so
// every validator and miner switches at the same block. The record (key
// "u/" + netuid) exists only once a subnet's owner sent SetSubnetSpec:
// other subnets store and hash as before.

// specRecord is a subnet's spec change: the pending hash (nil: none) and
// the block its current spec hash took effect (0: at registration).
type specRecord struct {
	pending     []byte
	effectiveAt uint64
}

func keySubnetSpec(n uint16) string { return "u/" + string(binary.BigEndian.AppendUint16(nil, n)) }

func (r *specRecord) encode() []byte {
	var e encoder
	e.bytes(r.pending)
	e.u64(r.effectiveAt)
	return e.b
}

func decodeSpecRecord(b []byte) (*specRecord, error) {
	d := decoder{b: b}
	r := &specRecord{pending: d.bytes(), effectiveAt: d.u64()}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if len(r.pending) != 0 && len(r.pending) != sha256.Size {
		return nil, errors.New("a pending spec hash is not 32 bytes")
	}
	if len(r.pending) == 0 {
		r.pending = nil
	}
	return r, nil
}

// specIndex holds the subnets' spec records and which changed.
type specIndex struct {
	recs  map[uint16]*specRecord
	dirty map[uint16]struct{}
}

func (x *specIndex) init() {
	if x.recs == nil {
		x.recs, x.dirty = map[uint16]*specRecord{}, map[uint16]struct{}{}
	}
}

func (x *specIndex) takeDirty() []record {
	var out []record
	for n := range x.dirty {
		out = append(out, record{keySubnetSpec(n), x.recs[n].encode()})
	}
	clear(x.dirty)
	return out
}

func (x *specIndex) all() []record {
	var out []record
	for n, r := range x.recs {
		out = append(out, record{keySubnetSpec(n), r.encode()})
	}
	return out
}

func (x *specIndex) load(key string, value []byte) error {
	r, err := decodeSpecRecord(value)
	if err == nil {
		x.init()
		x.recs[binary.BigEndian.Uint16([]byte(key[2:4]))] = r
	}
	return err
}

// execSetSubnetSpec makes a new spec hash pending until the subnet's next
// epoch block; a pending one is replaced. Mechanism shares, if given, are
// scheduled as SetMechanisms schedules them, for the same block.
func (s *State) execSetSubnetSpec(c *txContext, m *chainpb.SetSubnetSpec) ([]Event, error) {
	if len(m.SpecHash) != sha256.Size {
		return nil, txErr(ErrInvalidSpecHash, "%d bytes", len(m.SpecHash))
	}
	if len(m.MechanismShares) != 0 {
		if err := checkShares(m.MechanismShares); err != nil {
			return nil, err
		}
	}
	sub, err := s.ownedSubnet(m.Netuid, c.tx.Signer)
	if err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	var events []Event
	if len(m.MechanismShares) != 0 {
		events = append(events, s.scheduleMechanisms(sub, m.MechanismShares))
	}
	s.specs.init()
	r, ok := s.specs.recs[sub.Netuid]
	if !ok {
		r = &specRecord{}
		s.specs.recs[sub.Netuid] = r
	}
	r.pending = append([]byte(nil), m.SpecHash...)
	s.specs.dirty[sub.Netuid] = struct{}{}
	at := nextEpochBlock(sub.Netuid, sub.Params.Tempo, s.height)
	return append([]Event{event("subnet_spec_scheduled", "netuid", u64s(uint64(sub.Netuid)), "spec_hash", hex.EncodeToString(m.SpecHash), "effective_block", u64s(at))}, events...), nil
}

// applyPendingSpec makes sub's pending spec hash its spec hash, at its
// epoch block.
func (s *State) applyPendingSpec(sub *Subnet) []Event {
	r, ok := s.specs.recs[sub.Netuid]
	if !ok || r.pending == nil {
		return nil
	}
	sub.SpecHash, r.pending, r.effectiveAt = r.pending, nil, s.height
	s.markSubnet(sub.Netuid)
	s.specs.dirty[sub.Netuid] = struct{}{}
	return []Event{event("subnet_spec_applied", "netuid", u64s(uint64(sub.Netuid)), "spec_hash", hex.EncodeToString(sub.SpecHash))}
}

// applySubnetBoundary applies what waits for sub's epoch block: a new
// spec hash and new mechanism shares.
func (s *State) applySubnetBoundary(sub *Subnet) []Event {
	events := s.applyPendingSpec(sub)
	return append(events, s.applyPendingMechanisms(sub.Netuid)...)
}

// specInfo fills info's spec lifecycle fields.
func (s *State) specInfo(sub *Subnet, info *SubnetInfo) {
	info.SpecEffectiveBlock = sub.RegisteredAt
	r, ok := s.specs.recs[sub.Netuid]
	if !ok {
		return
	}
	if r.effectiveAt != 0 {
		info.SpecEffectiveBlock = r.effectiveAt
	}
	if r.pending != nil {
		info.PendingSpecHash = append([]byte(nil), r.pending...)
		info.SpecEffectiveBlock = nextEpochBlock(sub.Netuid, sub.Params.Tempo, s.height)
	}
}
