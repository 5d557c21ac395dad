package chain

import (
	"encoding/binary"
	"errors"
	"fmt"
	"strings"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// This file holds a subnet's incentive mechanisms, as subtensor's
// mechanisms ("sub-subnets") have them: one subnet, one set of uids and
// stake, and up to MaxMechanisms independent weight matrices, each with its
// own bonds, consensus and incentive, sharing the subnet's emission in the
// proportions the owner set.
//
// Mechanism 0 lives where a subnet's weights always did: in each neuron's
// record. Mechanisms 1 and up keep a mechanismRow per (netuid, mechanism,
// uid) under "w/", created by the first weights, commit or bonds there;
// the shares and the last epoch's per-mechanism incentive live in one
// mechanismsRecord per subnet under "e/". A subnet that never set
// mechanisms has neither, and so stores, hashes and runs bit for bit as
// before mechanisms existed.

// MaxMechanisms bounds a subnet's mechanisms (subtensor's
// MAX_MECHANISM_COUNT_PER_SUBNET).
const MaxMechanisms = 16

// mechanismsRecord is a subnet's mechanism set. It exists only while the
// subnet has two or more mechanisms or a change is pending: a subnet whose
// change to one mechanism applies loses it.
type mechanismsRecord struct {
	// shares are the mechanisms' emission shares (mechanism i gets
	// shares[i] / Σ shares); nil is the single mechanism [1].
	shares []uint32
	// pending replaces shares at the subnet's next epoch block (nil: no
	// change pending).
	pending []uint32
	// incentive is, per mechanism, the last epoch's incentive by uid (nil
	// until a multi-mechanism epoch ran).
	incentive [][]uint16
}

// mechanismRow is a neuron's weights side on a mechanism other than 0:
// what the neuron's own record holds for mechanism 0.
type mechanismRow struct {
	weights    []Entry
	bonds      []Entry
	lastUpdate uint64
	commit     *WeightCommit
}

func (r *mechanismRow) empty() bool {
	return len(r.weights) == 0 && len(r.bonds) == 0 && r.lastUpdate == 0 && r.commit == nil
}

type mechRowKey struct {
	netuid uint16
	mech   uint8
	uid    uint16
}

// mechanismIndex holds every subnet's mechanisms and rows and which of them
// changed since the last block was stored.
type mechanismIndex struct {
	subnets      map[uint16]*mechanismsRecord
	rows         map[mechRowKey]*mechanismRow
	dirtySubnets map[uint16]struct{}
	dirtyRows    map[mechRowKey]struct{}
}

// Storage keys.
func keyMechanisms(n uint16) string { return "e/" + string(binary.BigEndian.AppendUint16(nil, n)) }
func keyMechanismRow(k mechRowKey) string {
	b := binary.BigEndian.AppendUint16(nil, k.netuid)
	b = append(b, k.mech)
	return "w/" + string(binary.BigEndian.AppendUint16(b, k.uid))
}

func (x *mechanismIndex) init() {
	if x.subnets == nil {
		x.subnets, x.rows = map[uint16]*mechanismsRecord{}, map[mechRowKey]*mechanismRow{}
		x.dirtySubnets, x.dirtyRows = map[uint16]struct{}{}, map[mechRowKey]struct{}{}
	}
}

// count is the number of mechanisms netuid runs now.
func (x *mechanismIndex) count(netuid uint16) int {
	if r, ok := x.subnets[netuid]; ok && len(r.shares) > 1 {
		return len(r.shares)
	}
	return 1
}

// shares returns netuid's current shares: nil for a single mechanism.
func (x *mechanismIndex) sharesOf(netuid uint16) []uint32 {
	if r, ok := x.subnets[netuid]; ok && len(r.shares) > 1 {
		return r.shares
	}
	return nil
}

func (x *mechanismIndex) row(k mechRowKey) *mechanismRow { return x.rows[k] }

// rowFor returns k's row, creating it; the caller changes it and marks it.
func (x *mechanismIndex) rowFor(k mechRowKey) *mechanismRow {
	x.init()
	r, ok := x.rows[k]
	if !ok {
		r = &mechanismRow{}
		x.rows[k] = r
	}
	return r
}

// markRow notes a changed row; an empty one is removed.
func (x *mechanismIndex) markRow(k mechRowKey) {
	x.init()
	if r, ok := x.rows[k]; ok && r.empty() {
		delete(x.rows, k)
	}
	x.dirtyRows[k] = struct{}{}
}

func (x *mechanismIndex) markSubnet(netuid uint16) {
	x.init()
	if r, ok := x.subnets[netuid]; ok && len(r.shares) <= 1 && r.pending == nil {
		delete(x.subnets, netuid)
	}
	x.dirtySubnets[netuid] = struct{}{}
}

// clearUID forgets uid's rows and incentive on every mechanism of netuid:
// a new neuron took the uid.
func (x *mechanismIndex) clearUID(netuid, uid uint16) {
	r, ok := x.subnets[netuid]
	if !ok {
		return
	}
	for m := 1; m < MaxMechanisms; m++ {
		k := mechRowKey{netuid, uint8(m), uid}
		if _, ok := x.rows[k]; ok {
			delete(x.rows, k)
			x.markRow(k)
		}
	}
	changed := false
	for _, col := range r.incentive {
		if int(uid) < len(col) && col[uid] != 0 {
			col[uid] = 0
			changed = true
		}
	}
	if changed {
		x.markSubnet(netuid)
	}
}

// dropMechanismsFrom deletes the rows of netuid's mechanisms from count on.
func (x *mechanismIndex) dropMechanismsFrom(netuid uint16, count int) {
	for k := range x.rows {
		if k.netuid == netuid && int(k.mech) >= count {
			delete(x.rows, k)
			x.markRow(k)
		}
	}
}

func (r *mechanismsRecord) encode() []byte {
	var e encoder
	encodeShares(&e, r.shares)
	e.boolean(r.pending != nil)
	if r.pending != nil {
		encodeShares(&e, r.pending)
	}
	e.u64(uint64(len(r.incentive)))
	for _, col := range r.incentive {
		e.u64(uint64(len(col)))
		for _, v := range col {
			e.u64(uint64(v))
		}
	}
	return e.b
}

func encodeShares(e *encoder, shares []uint32) {
	e.u64(uint64(len(shares)))
	for _, s := range shares {
		e.u64(uint64(s))
	}
}

func decodeShares(d *decoder) []uint32 {
	n := d.length()
	if d.err == nil && n > MaxMechanisms {
		d.fail(errors.New("more than 16 mechanism shares"))
	}
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]uint32, n)
	for i := range out {
		v := d.u64()
		if d.err == nil && (v == 0 || v > 1<<32-1) {
			d.fail(errors.New("mechanism share out of range"))
		}
		out[i] = uint32(v)
	}
	return out
}

func decodeMechanismsRecord(b []byte) (*mechanismsRecord, error) {
	d := decoder{b: b}
	r := &mechanismsRecord{shares: decodeShares(&d)}
	if d.boolean() {
		r.pending = decodeShares(&d)
		if d.err == nil && r.pending == nil {
			d.fail(errors.New("empty pending mechanism shares"))
		}
	}
	n := d.length()
	if d.err == nil && n > MaxMechanisms {
		d.fail(errors.New("more than 16 incentive columns"))
	}
	for range n {
		m := d.length()
		if d.err != nil {
			break
		}
		col := make([]uint16, m)
		for i := range col {
			col[i] = d.u16()
		}
		r.incentive = append(r.incentive, col)
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if len(r.shares) <= 1 && r.pending == nil {
		return nil, errors.New("a mechanisms record without mechanisms")
	}
	return r, nil
}

func (r *mechanismRow) encode() []byte {
	var e encoder
	encodeEntries(&e, r.weights)
	encodeEntries(&e, r.bonds)
	e.u64(r.lastUpdate)
	e.boolean(r.commit != nil)
	if c := r.commit; c != nil {
		e.bytes(c.Hash[:])
		e.u64(c.Block)
	}
	return e.b
}

func decodeMechanismRow(b []byte) (*mechanismRow, error) {
	d := decoder{b: b}
	r := &mechanismRow{weights: decodeEntries(&d), bonds: decodeEntries(&d), lastUpdate: d.u64()}
	if d.boolean() {
		c := &WeightCommit{}
		copy(c.Hash[:], d.fixed(32))
		c.Block = d.u64()
		r.commit = c
	}
	if err := d.finish(); err != nil {
		return nil, err
	}
	if r.empty() {
		return nil, errors.New("an empty mechanism row")
	}
	return r, nil
}

// takeDirty returns a record for every changed subnet and row: its
// encoding, or a nil value for one removed.
func (x *mechanismIndex) takeDirty() []record {
	var out []record
	for n := range x.dirtySubnets {
		r := record{key: keyMechanisms(n)}
		if m, ok := x.subnets[n]; ok {
			r.value = m.encode()
		}
		out = append(out, r)
	}
	for k := range x.dirtyRows {
		r := record{key: keyMechanismRow(k)}
		if row, ok := x.rows[k]; ok {
			r.value = row.encode()
		}
		out = append(out, r)
	}
	clear(x.dirtySubnets)
	clear(x.dirtyRows)
	return out
}

// all returns a record for every subnet and row, unsorted.
func (x *mechanismIndex) all() []record {
	var out []record
	for n, m := range x.subnets {
		out = append(out, record{keyMechanisms(n), m.encode()})
	}
	for k, row := range x.rows {
		out = append(out, record{keyMechanismRow(k), row.encode()})
	}
	return out
}

// loadSubnet and loadRow install stored records while restoring a state.
func (x *mechanismIndex) loadSubnet(key string, value []byte) error {
	m, err := decodeMechanismsRecord(value)
	if err == nil {
		x.init()
		x.subnets[binary.BigEndian.Uint16([]byte(key[2:4]))] = m
	}
	return err
}

func (x *mechanismIndex) loadRow(key string, value []byte) error {
	row, err := decodeMechanismRow(value)
	if err != nil {
		return err
	}
	k := mechRowKey{netuid: binary.BigEndian.Uint16([]byte(key[2:4])), mech: key[4], uid: binary.BigEndian.Uint16([]byte(key[5:7]))}
	if k.mech == 0 || k.mech >= MaxMechanisms {
		return fmt.Errorf("mechanism row of mechanism %d", k.mech)
	}
	x.init()
	x.rows[k] = row
	return nil
}

// SplitEmission splits total between mechanisms by shares: mechanism i
// gets floor(total · shares[i] / Σ shares), and the rounding remainder
// (less than the number of mechanisms) goes to mechanism 0, as subtensor
// credits it, so the parts sum to total exactly. No shares (or one) is
// the whole of total to mechanism 0.
func SplitEmission(total uint64, shares []uint32) []uint64 {
	if len(shares) <= 1 {
		return []uint64{total}
	}
	var sum uint64
	for _, s := range shares {
		sum += uint64(s)
	}
	out := make([]uint64, len(shares))
	if sum == 0 {
		out[0] = total
		return out
	}
	var given uint64
	for i, s := range shares {
		out[i] = mulDiv(total, uint64(s), sum)
		given += out[i]
	}
	out[0] += total - given
	return out
}

// nextEpochBlock is the first block after height whose block step runs
// netuid's epoch (at height itself it already ran: a block's step runs
// before its transactions).
func nextEpochBlock(netuid uint16, tempo, height uint64) uint64 {
	if tempo == 0 {
		return 0
	}
	if b := BlocksUntilNextEpoch(netuid, tempo, height); b != 0 {
		return height + b
	}
	return height + tempo + 1
}

// ownedSubnet returns a subnet other than the root that signer owns.
func (s *State) ownedSubnet(netuid uint32, signer Address) (*Subnet, error) {
	sub, err := s.subnet(netuid)
	if err != nil {
		return nil, err
	}
	if sub.Netuid == RootNetuid {
		return nil, txErr(ErrOnRootNetwork, "the root network has one mechanism and no spec")
	}
	if signer != sub.Owner {
		return nil, txErr(ErrNotSubnetOwner, "subnet %d is owned by %s, not %s", sub.Netuid, sub.Owner, signer)
	}
	return sub, nil
}

func sharesString(shares []uint32) string {
	parts := make([]string, len(shares))
	for i, s := range shares {
		parts[i] = u64s(uint64(s))
	}
	return strings.Join(parts, ",")
}

// execSetMechanisms schedules a subnet's new mechanism shares for its next
// epoch block.
func (s *State) execSetMechanisms(c *txContext, m *chainpb.SetMechanisms) ([]Event, error) {
	if err := checkShares(m.Shares); err != nil {
		return nil, err
	}
	sub, err := s.ownedSubnet(m.Netuid, c.tx.Signer)
	if err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	return []Event{s.scheduleMechanisms(sub, m.Shares)}, nil
}

// checkShares refuses a share list SetMechanisms may not set.
func checkShares(shares []uint32) error {
	if len(shares) == 0 || len(shares) > MaxMechanisms {
		return txErr(ErrInvalidMechanismShares, "%d shares (1 to %d)", len(shares), MaxMechanisms)
	}
	for i, v := range shares {
		if v == 0 {
			return txErr(ErrInvalidMechanismShares, "share %d is 0", i)
		}
	}
	return nil
}

// scheduleMechanisms makes shares sub's pending mechanisms.
func (s *State) scheduleMechanisms(sub *Subnet, shares []uint32) Event {
	s.mech.init()
	r, ok := s.mech.subnets[sub.Netuid]
	if !ok {
		r = &mechanismsRecord{}
		s.mech.subnets[sub.Netuid] = r
	}
	r.pending = append([]uint32(nil), shares...)
	s.mech.markSubnet(sub.Netuid)
	at := nextEpochBlock(sub.Netuid, sub.Params.Tempo, s.height)
	return event("mechanisms_scheduled", "netuid", u64s(uint64(sub.Netuid)), "shares", sharesString(shares), "effective_block", u64s(at))
}

// applyPendingMechanisms installs netuid's pending shares, at its epoch
// block after the epoch: the dropped mechanisms' rows and incentive go.
func (s *State) applyPendingMechanisms(netuid uint16) []Event {
	r, ok := s.mech.subnets[netuid]
	if !ok || r.pending == nil {
		return nil
	}
	shares := r.pending
	r.pending = nil
	if len(shares) == 1 {
		shares = nil
	}
	count := max(len(shares), 1)
	old := s.mech.count(netuid)
	r.shares = shares
	if count < old {
		s.mech.dropMechanismsFrom(netuid, count)
	}
	if count != old {
		r.incentive = nil // the next epoch fills it
	}
	s.mech.markSubnet(netuid)
	ev := event("mechanisms_applied", "netuid", u64s(uint64(netuid)), "mechanisms", u64s(uint64(count)))
	if shares != nil {
		ev.Attrs["shares"] = sharesString(shares)
	}
	return []Event{ev}
}

// checkMechanism refuses a mechanism the subnet does not run now.
func (s *State) checkMechanism(sub *Subnet, mech uint32) error {
	if count := s.mech.count(sub.Netuid); mech >= uint32(count) {
		return txErr(ErrMechanismDoesNotExist, "mechanism %d: subnet %d has %d (0 to %d)", mech, sub.Netuid, count, count-1)
	}
	return nil
}

// lastUpdate is when uid last set weights on mech (its registration block
// if it never did there).
func (s *State) lastUpdate(sub *Subnet, uid uint16, mech uint8) uint64 {
	n := sub.neurons[uid]
	if mech == 0 {
		return n.LastUpdate
	}
	if r := s.mech.row(mechRowKey{sub.Netuid, mech, uid}); r != nil && r.lastUpdate != 0 {
		return r.lastUpdate
	}
	return n.RegisteredAt
}

// weightCommit is uid's pending commit on mech, or nil.
func (s *State) weightCommit(sub *Subnet, uid uint16, mech uint8) *WeightCommit {
	if mech == 0 {
		return sub.neurons[uid].Commit
	}
	if r := s.mech.row(mechRowKey{sub.Netuid, mech, uid}); r != nil {
		return r.commit
	}
	return nil
}

// setWeightCommit stores (or with nil clears) uid's commit on mech.
func (s *State) setWeightCommit(sub *Subnet, uid uint16, mech uint8, c *WeightCommit) {
	if mech == 0 {
		sub.neurons[uid].Commit = c
		s.markNeuron(sub.Netuid, uid)
		return
	}
	k := mechRowKey{sub.Netuid, mech, uid}
	s.mech.rowFor(k).commit = c
	s.mech.markRow(k)
}

// storeMechanismWeights stores uid's weights on mech at this block.
func (s *State) storeMechanismWeights(sub *Subnet, uid uint16, mech uint8, row []Entry) {
	if mech == 0 {
		s.storeWeights(sub, uid, row)
		return
	}
	k := mechRowKey{sub.Netuid, mech, uid}
	r := s.mech.rowFor(k)
	r.weights, r.lastUpdate = row, s.height
	s.mech.markRow(k)
}

// runMechanismEpochs runs the epoch of each of sub's mechanisms on its
// share of pending, then pays each neuron the sum of its emissions. The
// neuron's columns become the share-weighted means of its mechanisms'
// (floor), its Active and ValidatorPermit the OR; each mechanism keeps its
// bonds and incentive. Nothing changes unless every mechanism's epoch
// succeeded.
func (s *State) runMechanismEpochs(sub *Subnet, pending uint64, shares []uint32) Event {
	netuid := sub.Netuid
	failed := func(err string) Event {
		return event("epoch_failed", "netuid", u64s(uint64(netuid)), "error", err)
	}
	base := make([]EpochNeuron, len(sub.neurons))
	for i, n := range sub.neurons {
		base[i] = EpochNeuron{Stake: s.hotkeyStake(n.Hotkey), RegisteredAt: n.RegisteredAt, ValidatorPermit: n.ValidatorPermit}
	}
	inherited := s.applyChildStakes(sub, base)
	amounts := SplitEmission(pending, shares)
	results := make([][]EpochNeuronResult, len(shares))
	var paid uint64
	for m := range shares {
		in := &EpochInput{
			Block: s.height, Emission: amounts[m],
			Kappa: sub.Params.Kappa, BondsMovingAverage: sub.Params.BondsMovingAverage, BondsPenalty: sub.Params.BondsPenalty,
			ActivityCutoff: sub.Params.ActivityCutoff, MaxAllowedValidators: sub.Params.MaxAllowedValidators,
			Neurons: make([]EpochNeuron, len(base)),
		}
		for i, n := range sub.neurons {
			in.Neurons[i] = base[i]
			if m == 0 {
				in.Neurons[i].LastUpdate, in.Neurons[i].Weights, in.Neurons[i].Bonds = n.LastUpdate, n.Weights, n.Bonds
				continue
			}
			in.Neurons[i].LastUpdate = s.lastUpdate(sub, uint16(i), uint8(m))
			if r := s.mech.row(mechRowKey{netuid, uint8(m), uint16(i)}); r != nil {
				in.Neurons[i].Weights, in.Neurons[i].Bonds = r.weights, r.bonds
			}
		}
		out, err := s.epoch(in)
		if err != nil || len(out) != len(sub.neurons) {
			return failed(fmt.Sprintf("mechanism %d: %v", m, err))
		}
		var got uint64
		for _, r := range out {
			got += r.ServerEmission + r.ValidatorEmission
			if got > amounts[m] {
				return failed(fmt.Sprintf("mechanism %d: emission above its share", m))
			}
		}
		paid += got
		results[m] = out
	}
	var sum uint64
	for _, v := range shares {
		sum += uint64(v)
	}
	mean := func(i int, field func(*EpochNeuronResult) uint16) uint16 {
		var acc uint64
		for m := range shares {
			acc += uint64(field(&results[m][i])) * uint64(shares[m])
		}
		return uint16(acc / sum)
	}
	rec := s.mech.subnets[netuid]
	rec.incentive = make([][]uint16, len(shares))
	for m := range shares {
		rec.incentive[m] = make([]uint16, len(sub.neurons))
	}
	s.mech.markSubnet(netuid)
	for i, n := range sub.neurons {
		uid := uint16(i)
		var server, validator, emission uint64
		active, permit := false, false
		for m := range shares {
			r := &results[m][i]
			server += r.ServerEmission
			validator += r.ValidatorEmission
			emission += r.Emission
			active, permit = active || r.Active, permit || r.ValidatorPermit
			rec.incentive[m][i] = r.Incentive
			if m == 0 {
				n.Bonds = r.Bonds
				continue
			}
			k := mechRowKey{netuid, uint8(m), uid}
			if row := s.mech.row(k); row != nil || len(r.Bonds) != 0 {
				s.mech.rowFor(k).bonds = r.Bonds
				s.mech.markRow(k)
			}
		}
		n.Active, n.ValidatorPermit, n.Emission = active, permit, emission
		n.Rank = mean(i, func(r *EpochNeuronResult) uint16 { return r.Rank })
		n.Trust = mean(i, func(r *EpochNeuronResult) uint16 { return r.Trust })
		n.Consensus = mean(i, func(r *EpochNeuronResult) uint16 { return r.Consensus })
		n.Incentive = mean(i, func(r *EpochNeuronResult) uint16 { return r.Incentive })
		n.Dividends = mean(i, func(r *EpochNeuronResult) uint16 { return r.Dividends })
		n.ValidatorTrust = mean(i, func(r *EpochNeuronResult) uint16 { return r.ValidatorTrust })
		n.PruningScore = mean(i, func(r *EpochNeuronResult) uint16 { return r.PruningScore })
		s.markNeuron(netuid, uid)
		s.payValidator(sub, inherited, uid, server, validator)
	}
	s.g.TotalIssuance += paid
	s.dirty.globals = true
	return event("epoch", "netuid", u64s(uint64(netuid)), "neurons", u64s(uint64(len(sub.neurons))), "emission", u64s(paid),
		"mechanisms", u64s(uint64(len(shares))))
}

// MechanismsInfo is a subnet's mechanisms: their emission shares, a
// pending change, and each one's incentive from the last epoch.
type MechanismsInfo struct {
	Netuid uint16 `json:"netuid"`
	// Shares are the mechanisms' emission shares: mechanism i gets
	// Shares[i] / Σ Shares of the subnet's emission. A subnet that never
	// set mechanisms has one, [1].
	Shares []uint32 `json:"shares"`
	// PendingShares replace Shares at EffectiveBlock, the subnet's next
	// epoch block (after that block's epoch); nil when none are pending.
	PendingShares  []uint32 `json:"pending_shares,omitempty"`
	EffectiveBlock uint64   `json:"effective_block,omitempty"`
	// Incentive is each mechanism's incentive column (u16 fractions of
	// 65535) from the last epoch, indexed by uid: Incentive[m][uid].
	Incentive [][]uint16 `json:"incentive"`
}

// Count is the number of mechanisms.
func (m MechanismsInfo) Count() int { return len(m.Shares) }

// Mechanisms returns a subnet's mechanisms; ok is false if the subnet does
// not exist.
func (s *State) Mechanisms(netuid uint16) (MechanismsInfo, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return MechanismsInfo{}, false
	}
	info := MechanismsInfo{Netuid: netuid, Shares: []uint32{1}}
	if sh := s.mech.sharesOf(netuid); sh != nil {
		info.Shares = append([]uint32(nil), sh...)
	}
	if r, ok := s.mech.subnets[netuid]; ok && r.pending != nil {
		info.PendingShares = append([]uint32(nil), r.pending...)
		info.EffectiveBlock = nextEpochBlock(netuid, sub.Params.Tempo, s.height)
	}
	info.Incentive = s.mechanismIncentive(sub)
	return info, true
}

// mechanismIncentive is each mechanism's incentive column, of the
// subnet's current length (a uid past the last epoch's columns has 0).
// With one mechanism it is the neurons' incentive.
func (s *State) mechanismIncentive(sub *Subnet) [][]uint16 {
	n := len(sub.neurons)
	count := s.mech.count(sub.Netuid)
	out := make([][]uint16, count)
	if count == 1 {
		out[0] = make([]uint16, n)
		for i, nr := range sub.neurons {
			out[0][i] = nr.Incentive
		}
		return out
	}
	var cols [][]uint16
	if r, ok := s.mech.subnets[sub.Netuid]; ok {
		cols = r.incentive
	}
	for m := range out {
		out[m] = make([]uint16, n)
		if m < len(cols) {
			copy(out[m], cols[m])
		}
	}
	return out
}

// MechanismNeuron is a neuron's side of one mechanism.
type MechanismNeuron struct {
	Mechanism  uint8         `json:"mechanism"`
	Incentive  uint16        `json:"incentive"`
	LastUpdate uint64        `json:"last_update"`
	Weights    []Entry       `json:"weights"`
	Bonds      []Entry       `json:"bonds"`
	Commit     *WeightCommit `json:"commit,omitempty"`
}

// mechanismNeurons lists uid's side of every mechanism when the subnet has
// several (nil otherwise: the neuron's own fields are mechanism 0's).
func (s *State) mechanismNeurons(sub *Subnet, uid uint16, withRows bool) []MechanismNeuron {
	count := s.mech.count(sub.Netuid)
	if count == 1 {
		return nil
	}
	inc := s.mechanismIncentive(sub)
	out := make([]MechanismNeuron, count)
	for m := range out {
		mn := MechanismNeuron{Mechanism: uint8(m), Incentive: inc[m][uid], LastUpdate: s.lastUpdate(sub, uid, uint8(m))}
		var weights, bonds []Entry
		if m == 0 {
			weights, bonds = sub.neurons[uid].Weights, sub.neurons[uid].Bonds
		} else if r := s.mech.row(mechRowKey{sub.Netuid, uint8(m), uid}); r != nil {
			weights, bonds = r.weights, r.bonds
		}
		if withRows {
			mn.Weights, mn.Bonds = append([]Entry{}, weights...), append([]Entry{}, bonds...)
		}
		if c := s.weightCommit(sub, uid, uint8(m)); c != nil {
			cc := *c
			mn.Commit = &cc
		}
		out[m] = mn
	}
	return out
}

// MechanismWeights returns a mechanism's weights (or with bonds set, its
// bonds) as sparse rows indexed by uid; ok is false if the subnet or the
// mechanism does not exist.
func (s *State) MechanismWeights(netuid uint16, mech uint8, bonds bool) ([][]Entry, bool) {
	sub, ok := s.subnets[netuid]
	if !ok || int(mech) >= s.mech.count(netuid) {
		return nil, false
	}
	out := make([][]Entry, len(sub.neurons))
	for i, n := range sub.neurons {
		row := n.Weights
		if bonds {
			row = n.Bonds
		}
		if mech != 0 {
			row = nil
			if r := s.mech.row(mechRowKey{netuid, mech, uint16(i)}); r != nil {
				row = r.weights
				if bonds {
					row = r.bonds
				}
			}
		}
		out[i] = append([]Entry(nil), row...)
	}
	return out, true
}
