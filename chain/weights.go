package chain

import (
	"sort"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// toU16s converts a message's uids or values, which must fit 16 bits.
func toU16s(field string, in []uint32) ([]uint16, error) {
	out := make([]uint16, len(in))
	for i, v := range in {
		if v > 0xffff {
			return nil, txErr(ErrInvalidWeightValue, "%s[%d] = %d", field, i, v)
		}
		out[i] = uint16(v)
	}
	return out, nil
}

// maxUpscale scales values so the largest becomes 65535 (floor), as the
// chain stores weights.
func maxUpscale(values []uint16) []uint16 {
	var max uint16
	for _, v := range values {
		max = max16(max, v)
	}
	out := make([]uint16, len(values))
	if max == 0 {
		copy(out, values)
		return out
	}
	for i, v := range values {
		out[i] = uint16(uint64(v) * 65535 / uint64(max))
	}
	return out
}

func max16(a, b uint16) uint16 {
	if a > b {
		return a
	}
	return b
}

// weightsCheck validates a weight vector from hotkey for sub, as
// set_weights and reveal_weights require, and returns the sorted,
// max-upscaled row to store.
func (s *State) weightsCheck(sub *Subnet, mech uint8, hotkey Address, uids32, values32 []uint32, versionKey uint64, rateLimited bool) (uint16, []Entry, error) {
	if len(uids32) != len(values32) {
		return 0, nil, txErr(ErrWeightVecNotEqual, "%d uids, %d values", len(uids32), len(values32))
	}
	uids, err := toU16s("uids", uids32)
	if err != nil {
		return 0, nil, err
	}
	values, err := toU16s("values", values32)
	if err != nil {
		return 0, nil, err
	}
	root := sub.Netuid == RootNetuid
	if root {
		for _, u := range uids {
			if _, ok := s.subnets[u]; !ok || u == RootNetuid {
				return 0, nil, txErr(ErrInvalidUID, "netuid %d is not a subnet", u)
			}
		}
	} else if len(uids) > len(sub.neurons) {
		return 0, nil, txErr(ErrTooManyUIDs, "%d weights, %d neurons", len(uids), len(sub.neurons))
	}
	uid, ok := sub.uids[hotkey]
	if !ok {
		return 0, nil, txErr(ErrNotRegistered, "%s on netuid %d", hotkey, sub.Netuid)
	}
	if key := sub.Params.WeightsVersionKey; key != 0 && versionKey < key {
		return 0, nil, txErr(ErrIncorrectVersionKey, "version key %d < %d", versionKey, key)
	}
	n := sub.neurons[uid]
	last := s.lastUpdate(sub, uid, mech)
	if limit := sub.Params.WeightsRateLimit; rateLimited && last != n.RegisteredAt && last != 0 && s.height-last < limit {
		return 0, nil, txErr(ErrWeightsRateLimit, "last set at block %d, limit %d", last, limit)
	}
	self := len(uids) == 1 && uids[0] == uid
	if !root && !self && !n.ValidatorPermit {
		return 0, nil, txErr(ErrNoValidatorPermit, "uid %d on netuid %d", uid, sub.Netuid)
	}
	seen := make(map[uint16]struct{}, len(uids))
	for _, u := range uids {
		if _, dup := seen[u]; dup {
			return 0, nil, txErr(ErrDuplicateUIDs, "uid %d", u)
		}
		seen[u] = struct{}{}
	}
	if !root {
		for _, u := range uids {
			if int(u) >= len(sub.neurons) {
				return 0, nil, txErr(ErrInvalidUID, "uid %d (n = %d)", u, len(sub.neurons))
			}
		}
	}
	minAllowed := sub.Params.MinAllowedWeights
	if n := uint64(len(sub.neurons)); !root && n < minAllowed {
		minAllowed = n
	}
	if !(self && !root) && uint64(len(uids)) < minAllowed {
		return 0, nil, txErr(ErrNotEnoughWeights, "%d weights, min_allowed_weights %d", len(uids), minAllowed)
	}
	up := maxUpscale(values)
	if limit := sub.Params.MaxWeightLimit; !self && limit != 65535 {
		var sum, max uint64
		for _, v := range up {
			sum += uint64(v)
			if uint64(v) > max {
				max = uint64(v)
			}
		}
		// max/sum <= limit/65535, compared exactly.
		if sum > 0 && max*65535 > limit*sum {
			return 0, nil, txErr(ErrMaxWeightExceeded, "largest share %d/%d above %d/65535", max, sum, limit)
		}
	}
	row := make([]Entry, 0, len(uids))
	for i, u := range uids {
		if up[i] != 0 {
			row = append(row, Entry{UID: u, Value: up[i]})
		}
	}
	sortEntries(row)
	return uid, row, nil
}

func sortEntries(row []Entry) {
	// Insertion sort is fine for short rows; use the library for long ones.
	if len(row) < 32 {
		for i := 1; i < len(row); i++ {
			for j := i; j > 0 && row[j].UID < row[j-1].UID; j-- {
				row[j], row[j-1] = row[j-1], row[j]
			}
		}
		return
	}
	sortEntriesLong(row)
}

func (s *State) execSetWeights(c *txContext, m *chainpb.SetWeights) ([]Event, error) {
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if err := s.checkMechanism(sub, m.Mechanism); err != nil {
		return nil, err
	}
	mech := uint8(m.Mechanism)
	if sub.Params.CommitRevealWeights != 0 {
		return nil, txErr(ErrCommitRevealEnabled, "netuid %d", sub.Netuid)
	}
	uid, row, err := s.weightsCheck(sub, mech, c.tx.Signer, m.Uids, m.Values, m.VersionKey, true)
	if err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.storeMechanismWeights(sub, uid, mech, row)
	return []Event{withMechanism(event("weights_set", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "count", u64s(uint64(len(row)))), mech)}, nil
}

// withMechanism names a mechanism other than 0 in a weights event (events
// of mechanism 0 read as before mechanisms existed).
func withMechanism(e Event, mech uint8) Event {
	if mech != 0 {
		e.Attrs["mechanism"] = u64s(uint64(mech))
	}
	return e
}

func (s *State) storeWeights(sub *Subnet, uid uint16, row []Entry) {
	n := sub.neurons[uid]
	n.Weights = row
	n.LastUpdate = s.height
	s.markNeuron(sub.Netuid, uid)
}

func (s *State) execCommitWeights(c *txContext, m *chainpb.CommitWeights) ([]Event, error) {
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if err := s.checkMechanism(sub, m.Mechanism); err != nil {
		return nil, err
	}
	mech := uint8(m.Mechanism)
	if sub.Params.CommitRevealWeights == 0 {
		return nil, txErr(ErrCommitRevealDisabled, "netuid %d", sub.Netuid)
	}
	if len(m.Hash) != 32 {
		return nil, txErr(ErrInvalidCommitHash, "%d bytes", len(m.Hash))
	}
	uid, ok := sub.uids[c.tx.Signer]
	if !ok {
		return nil, txErr(ErrNotRegistered, "%s on netuid %d", c.tx.Signer, sub.Netuid)
	}
	prev := s.weightCommit(sub, uid, mech)
	if limit := sub.Params.WeightsRateLimit; prev != nil && s.height-prev.Block < limit {
		return nil, txErr(ErrWeightsRateLimit, "committed at block %d, limit %d", prev.Block, limit)
	}
	if c.check {
		return nil, nil
	}
	commit := &WeightCommit{Block: s.height}
	copy(commit.Hash[:], m.Hash)
	s.setWeightCommit(sub, uid, mech, commit)
	return []Event{withMechanism(event("weights_committed", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid))), mech)}, nil
}

// RevealWindow returns the blocks in which a commit made at commitBlock can
// be revealed: the whole interval after the commit's.
func RevealWindow(commitBlock, interval uint64) (first, last uint64) {
	first = (commitBlock/interval + 1) * interval
	return first, first + interval - 1
}

func (s *State) execRevealWeights(c *txContext, m *chainpb.RevealWeights) ([]Event, error) {
	sub, err := s.subnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if err := s.checkMechanism(sub, m.Mechanism); err != nil {
		return nil, err
	}
	mech := uint8(m.Mechanism)
	if sub.Params.CommitRevealWeights == 0 {
		return nil, txErr(ErrCommitRevealDisabled, "netuid %d", sub.Netuid)
	}
	uid, ok := sub.uids[c.tx.Signer]
	if !ok {
		return nil, txErr(ErrNotRegistered, "%s on netuid %d", c.tx.Signer, sub.Netuid)
	}
	commit := s.weightCommit(sub, uid, mech)
	if commit == nil {
		return nil, txErr(ErrNoWeightsCommit, "uid %d", uid)
	}
	first, last := RevealWindow(commit.Block, sub.Params.CommitRevealInterval)
	if s.height < first {
		return nil, txErr(ErrRevealTooEarly, "reveal from block %d", first)
	}
	if s.height > last {
		return nil, txErr(ErrRevealExpired, "reveal window ended at block %d", last)
	}
	if len(m.Salt) > 64 {
		return nil, txErr(ErrRevealMismatch, "salt longer than 64 bytes")
	}
	uids, err1 := toU16s("uids", m.Uids)
	values, err2 := toU16s("values", m.Values)
	if err1 != nil || err2 != nil {
		return nil, txErr(ErrRevealMismatch, "uids or values do not fit 16 bits")
	}
	if CommitHashMechanism(c.tx.Signer, sub.Netuid, mech, uids, values, m.Salt, m.VersionKey) != commit.Hash {
		return nil, txErr(ErrRevealMismatch, "hash differs from the commit of block %d", commit.Block)
	}
	_, row, err := s.weightsCheck(sub, mech, c.tx.Signer, m.Uids, m.Values, m.VersionKey, false)
	if err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.setWeightCommit(sub, uid, mech, nil)
	s.storeMechanismWeights(sub, uid, mech, row)
	return []Event{withMechanism(event("weights_revealed", "netuid", u64s(uint64(sub.Netuid)), "uid", u64s(uint64(uid)), "count", u64s(uint64(len(row)))), mech)}, nil
}

func sortEntriesLong(row []Entry) {
	sort.Slice(row, func(i, j int) bool { return row[i].UID < row[j].UID })
}
