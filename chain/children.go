package chain

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/bits"
	"sort"

	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// This file holds child hotkeys, as subtensor's staking/set_children.rs
// has them: a parent hotkey lends proportions of its stake weight on a
// subnet to up to MaxChildren child hotkeys; the epoch counts each
// hotkey's effective stake (own stake, less what it lends, plus what its
// parents lend it), and a child's dividends earned with lent stake flow
// back to the lenders, less the child's childkey take.

// MaxChildren bounds a parent's children on one subnet.
const MaxChildren = 5

// ProportionOne is a parent's whole stake: a child's proportion is a
// fraction of it, proportion / (2^64 − 1).
const ProportionOne = ^uint64(0)

// Child is one edge of the parent–child graph: a hotkey and the proportion
// lent to it (in a parent's list) or by it (in a child's parent list).
type Child struct {
	Hotkey     Address `json:"hotkey"`
	Proportion uint64  `json:"proportion"`
}

// PendingChildren is a scheduled replacement of a parent's children: it
// applies at the block step of block ApplyAt.
type PendingChildren struct {
	Children []Child `json:"children"`
	ApplyAt  uint64  `json:"apply_at"`
}

// childRecord is one hotkey's child-key state on one subnet, stored under
// keyChildren: its applied children, a pending change, and its childkey
// take with the block it was last set (for childkey_take_rate_limit).
type childRecord struct {
	children  []Child
	pending   *PendingChildren
	take      uint16
	takeBlock uint64
}

type childKey struct {
	netuid uint16
	hotkey Address
}

func keyChildren(netuid uint16, hotkey Address) string {
	return "c/" + string(binary.BigEndian.AppendUint16(nil, netuid)) + string(hotkey[:])
}

// childIndex holds every childRecord and what is derived from them: the
// parents of each child, the number of applied edges per subnet (the epoch
// does nothing extra on a subnet with none) and the number of pending
// changes (the block step does nothing with none).
type childIndex struct {
	recs map[childKey]*childRecord
	// parents maps netuid → child → its parents (Child.Hotkey is the
	// parent), sorted by parent address.
	parents map[uint16]map[Address][]Child
	edges   map[uint16]int
	pending int
	dirty   map[childKey]struct{}
}

func newChildIndex() childIndex {
	return childIndex{
		recs:    map[childKey]*childRecord{},
		parents: map[uint16]map[Address][]Child{},
		edges:   map[uint16]int{},
		dirty:   map[childKey]struct{}{},
	}
}

func (x *childIndex) record(k childKey) *childRecord {
	r, ok := x.recs[k]
	if !ok {
		r = &childRecord{}
		x.recs[k] = r
	}
	return r
}

func (x *childIndex) parentsOf(netuid uint16, child Address) []Child {
	return x.parents[netuid][child]
}

// link adds or removes the edges parent → children on netuid in the
// parents index.
func (x *childIndex) link(netuid uint16, parent Address, children []Child, add bool) {
	m := x.parents[netuid]
	if m == nil {
		m = map[Address][]Child{}
		x.parents[netuid] = m
	}
	for _, c := range children {
		list := m[c.Hotkey]
		i := sort.Search(len(list), func(i int) bool { return bytes.Compare(list[i].Hotkey[:], parent[:]) >= 0 })
		found := i < len(list) && list[i].Hotkey == parent
		switch {
		case add && !found:
			list = append(list, Child{})
			copy(list[i+1:], list[i:])
			list[i] = Child{Hotkey: parent, Proportion: c.Proportion}
			x.edges[netuid]++
		case add:
			list[i].Proportion = c.Proportion
		case found:
			list = append(list[:i], list[i+1:]...)
			x.edges[netuid]--
		}
		if len(list) == 0 {
			delete(m, c.Hotkey)
		} else {
			m[c.Hotkey] = list
		}
	}
}

// install puts a record in the index (a loaded one, or one moved).
func (x *childIndex) install(k childKey, r *childRecord) {
	x.recs[k] = r
	x.link(k.netuid, k.hotkey, r.children, true)
	if r.pending != nil {
		x.pending++
	}
}

func (r *childRecord) encode() []byte {
	var e encoder
	encodeChildren(&e, r.children)
	e.boolean(r.pending != nil)
	if p := r.pending; p != nil {
		e.u64(p.ApplyAt)
		encodeChildren(&e, p.Children)
	}
	e.u64(uint64(r.take))
	e.u64(r.takeBlock)
	return e.b
}

func encodeChildren(e *encoder, list []Child) {
	e.u64(uint64(len(list)))
	for _, c := range list {
		e.bytes(c.Hotkey[:])
		e.u64(c.Proportion)
	}
}

func decodeChildren(d *decoder) []Child {
	n := d.length()
	if d.err == nil && n > MaxChildren {
		d.fail(errTruncated)
	}
	if d.err != nil || n == 0 {
		return nil
	}
	out := make([]Child, n)
	for i := range out {
		copy(out[i].Hotkey[:], d.fixed(20))
		out[i].Proportion = d.u64()
	}
	return out
}

func decodeChildRecord(b []byte) (*childRecord, error) {
	d := decoder{b: b}
	r := &childRecord{children: decodeChildren(&d)}
	if d.boolean() {
		r.pending = &PendingChildren{ApplyAt: d.u64()}
		r.pending.Children = decodeChildren(&d)
	}
	r.take = d.u16()
	r.takeBlock = d.u64()
	return r, d.finish()
}

// loadChildRecord installs a persisted record while restoring a state.
func (s *State) loadChildRecord(key string, value []byte) error {
	r, err := decodeChildRecord(value)
	if err != nil {
		return err
	}
	var k childKey
	k.netuid = binary.BigEndian.Uint16([]byte(key[2:4]))
	copy(k.hotkey[:], key[4:])
	s.ch.install(k, r)
	return nil
}

func (s *State) markChildren(k childKey) { s.ch.dirty[k] = struct{}{} }

// dirtyChildRecords returns the records changed since the last call; a
// removed one (a swapped-out hotkey's) has a nil value, which deletes it.
func (s *State) dirtyChildRecords() []record {
	out := make([]record, 0, len(s.ch.dirty))
	for k := range s.ch.dirty {
		var v []byte
		if r, ok := s.ch.recs[k]; ok {
			v = r.encode()
		}
		out = append(out, record{keyChildren(k.netuid, k.hotkey), v})
	}
	s.ch.dirty = map[childKey]struct{}{}
	return out
}

// allChildRecords encodes every child record, unsorted.
func (s *State) allChildRecords() []record {
	out := make([]record, 0, len(s.ch.recs))
	for k, r := range s.ch.recs {
		out = append(out, record{keyChildren(k.netuid, k.hotkey), r.encode()})
	}
	return out
}

// ownedHotkey returns hotkey's record if the signer owns it:
// not_registered if it has no account, non_associated_coldkey if another
// coldkey owns it.
func (s *State) ownedHotkey(signer, hotkey Address) (*Hotkey, error) {
	hk, ok := s.hotkeys[hotkey]
	if !ok {
		return nil, txErr(ErrNotRegistered, "hotkey %s has no account", hotkey)
	}
	if hk.Owner != signer {
		return nil, txErr(ErrNonAssociatedColdkey, "%s is owned by %s", hotkey, hk.Owner)
	}
	return hk, nil
}

// childSubnet returns the subnet a child-key message names: it must exist
// and not be the root network.
func (s *State) childSubnet(netuid uint32) (*Subnet, error) {
	sub, err := s.subnet(netuid)
	if err != nil {
		return nil, err
	}
	if sub.Netuid == RootNetuid {
		return nil, txErr(ErrOnRootNetwork, "child hotkeys are per subnet")
	}
	return sub, nil
}

// checkChildren validates a parent's new children on netuid: at most
// MaxChildren, none the parent, none twice, each proportion positive and
// their sum at most ProportionOne, and no child a parent of the parent
// (which would make a cycle).
func (s *State) checkChildren(netuid uint16, parent Address, list []*chainpb.Child) ([]Child, error) {
	if len(list) > MaxChildren {
		return nil, txErr(ErrTooManyChildren, "%d children (at most %d)", len(list), MaxChildren)
	}
	out := make([]Child, 0, len(list))
	var sum uint64
	for i, c := range list {
		a, err := addressFrom(fmt.Sprintf("children[%d].hotkey", i), c.GetHotkey())
		if err != nil {
			return nil, err
		}
		if a == parent {
			return nil, txErr(ErrInvalidChild, "%s cannot be its own child", a)
		}
		for _, prev := range out {
			if prev.Hotkey == a {
				return nil, txErr(ErrDuplicateChild, "%s appears twice", a)
			}
		}
		if c.GetProportion() == 0 {
			return nil, txErr(ErrInvalidChildProportion, "children[%d] has proportion 0", i)
		}
		var carry uint64
		if sum, carry = bits.Add64(sum, c.GetProportion(), 0); carry != 0 {
			return nil, txErr(ErrInvalidChildProportion, "proportions sum above 2^64−1")
		}
		for _, p := range s.ch.parentsOf(netuid, parent) {
			if p.Hotkey == a {
				return nil, txErr(ErrChildParentCycle, "%s is a parent of %s on netuid %d", a, parent, netuid)
			}
		}
		out = append(out, Child{Hotkey: a, Proportion: c.GetProportion()})
	}
	return out, nil
}

func (s *State) execSetChildren(c *txContext, m *chainpb.SetChildren) ([]Event, error) {
	parent, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	sub, err := s.childSubnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if _, err := s.ownedHotkey(c.tx.Signer, parent); err != nil {
		return nil, err
	}
	children, err := s.checkChildren(sub.Netuid, parent, m.Children)
	if err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	k := childKey{sub.Netuid, parent}
	r := s.ch.record(k)
	if r.pending == nil {
		s.ch.pending++
	}
	r.pending = &PendingChildren{Children: children, ApplyAt: s.height + max(s.g.Globals.ChildrenCooldown, 1)}
	s.markChildren(k)
	return []Event{event("children_scheduled", "netuid", u64s(uint64(sub.Netuid)), "hotkey", parent.String(),
		"children", u64s(uint64(len(children))), "apply_at", u64s(r.pending.ApplyAt))}, nil
}

func (s *State) execSetChildkeyTake(c *txContext, m *chainpb.SetChildkeyTake) ([]Event, error) {
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	sub, err := s.childSubnet(m.Netuid)
	if err != nil {
		return nil, err
	}
	if _, err := s.ownedHotkey(c.tx.Signer, hotkey); err != nil {
		return nil, err
	}
	if limit := s.g.Globals.MaxChildkeyTake; uint64(m.Take) > limit {
		return nil, txErr(ErrInvalidChildkeyTake, "take %d > max_childkey_take %d", m.Take, limit)
	}
	k := childKey{sub.Netuid, hotkey}
	var cur childRecord
	if r, ok := s.ch.recs[k]; ok {
		cur = *r
	}
	if limit := s.g.Globals.ChildkeyTakeRateLimit; uint16(m.Take) > cur.take && cur.takeBlock != 0 && s.height-cur.takeBlock < limit {
		return nil, txErr(ErrChildkeyTakeRateLimit, "take last set at block %d, limit %d blocks: raise from block %d", cur.takeBlock, limit, cur.takeBlock+limit)
	}
	if c.check {
		return nil, nil
	}
	r := s.ch.record(k)
	r.take, r.takeBlock = uint16(m.Take), s.height
	s.markChildren(k)
	return []Event{event("childkey_take_set", "netuid", u64s(uint64(sub.Netuid)), "hotkey", hotkey.String(), "take", u64s(uint64(m.Take)))}, nil
}

// applyPendingChildren applies, at the block step, every pending change
// whose block has come, in (netuid, hotkey) order. A change that would now
// make a cycle (a child became a parent of the parent since it was
// scheduled) is dropped, as subtensor drops it.
func (s *State) applyPendingChildren() []Event {
	if s.ch.pending == 0 {
		return nil
	}
	var due []childKey
	for k, r := range s.ch.recs {
		if r.pending != nil && r.pending.ApplyAt <= s.height {
			due = append(due, k)
		}
	}
	sort.Slice(due, func(i, j int) bool {
		if due[i].netuid != due[j].netuid {
			return due[i].netuid < due[j].netuid
		}
		return bytes.Compare(due[i].hotkey[:], due[j].hotkey[:]) < 0
	})
	var events []Event
	for _, k := range due {
		r := s.ch.recs[k]
		p := r.pending
		r.pending = nil
		s.ch.pending--
		s.markChildren(k)
		if a, ok := s.childCycle(k, p.Children); ok {
			events = append(events, event("children_dropped", "netuid", u64s(uint64(k.netuid)), "hotkey", k.hotkey.String(),
				"reason", a.String()+" is a parent of the hotkey"))
			continue
		}
		s.ch.link(k.netuid, k.hotkey, r.children, false)
		r.children = p.Children
		s.ch.link(k.netuid, k.hotkey, r.children, true)
		events = append(events, event("children_set", "netuid", u64s(uint64(k.netuid)), "hotkey", k.hotkey.String(), "children", u64s(uint64(len(r.children)))))
	}
	return events
}

// childCycle returns a child in list that is a parent of k's hotkey.
func (s *State) childCycle(k childKey, list []Child) (Address, bool) {
	for _, c := range list {
		for _, p := range s.ch.parentsOf(k.netuid, k.hotkey) {
			if p.Hotkey == c.Hotkey {
				return c.Hotkey, true
			}
		}
	}
	return Address{}, false
}

// lent is what a parent with own stake lends at proportion.
func lent(own, proportion uint64) uint64 { return mulDiv(own, proportion, ProportionOne) }

// inheritance is, for a neuron with parents on a subnet, the part of its
// effective stake that is its own (own stake less what it lends) and the
// parts its parents lend it (Child.Proportion holds the amount), in parent
// address order.
type inheritance struct {
	self uint64
	from []Child
}

// applyChildStakes replaces each neuron's stake in neurons (indexed by
// uid) with its effective stake on sub: own stake × (1 − Σ proportions it
// lends) + Σ over parents of the parent's own stake × proportion. It
// returns, by uid, the parts of each neuron's stake its parents lent, for
// paying dividends back; nil when the subnet has no children, which costs
// one map lookup.
func (s *State) applyChildStakes(sub *Subnet, neurons []EpochNeuron) map[uint16]*inheritance {
	if s.ch.edges[sub.Netuid] == 0 {
		return nil
	}
	out := map[uint16]*inheritance{}
	// Integer sums and differences only: the result does not depend on
	// the order the maps are walked in.
	for child, parents := range s.ch.parents[sub.Netuid] {
		cuid, childRegistered := sub.uids[child]
		var inh *inheritance
		if childRegistered {
			inh = &inheritance{from: make([]Child, 0, len(parents))}
			out[cuid] = inh
		}
		for _, p := range parents {
			amount := lent(s.hotkeyStake(p.Hotkey), p.Proportion)
			if puid, ok := sub.uids[p.Hotkey]; ok {
				neurons[puid].Stake -= amount
			}
			if inh != nil {
				neurons[cuid].Stake += amount
				inh.from = append(inh.from, Child{Hotkey: p.Hotkey, Proportion: amount})
			}
		}
	}
	for uid, inh := range out {
		var from uint64
		for _, f := range inh.from {
			from += f.Proportion
		}
		inh.self = neurons[uid].Stake - from
	}
	return out
}

// payValidator pays a neuron's epoch emission. Without parents it is
// emitThroughHotkey. With parents, each parent's share of the validator
// emission (its lent stake over the neuron's effective stake) goes back to
// the parent through emitThroughHotkey(parent, 0, ·), so the parent's
// nominators share it net of the parent's delegate take, less the
// neuron's childkey take when parent and child have different owners (as
// subtensor); the rest, with the takes and rounding, is the neuron's.
func (s *State) payValidator(sub *Subnet, inh map[uint16]*inheritance, uid uint16, server, validator uint64) {
	n := sub.neurons[uid]
	in := inh[uid]
	if in == nil || validator == 0 {
		s.emitThroughHotkey(n.Hotkey, server, validator)
		return
	}
	total := in.self
	for _, f := range in.from {
		total += f.Proportion
	}
	if total == 0 {
		s.emitThroughHotkey(n.Hotkey, server, validator)
		return
	}
	var take uint64
	if r, ok := s.ch.recs[childKey{sub.Netuid, n.Hotkey}]; ok {
		take = uint64(r.take)
	}
	var owner Address
	if hk, ok := s.hotkeys[n.Hotkey]; ok {
		owner = hk.Owner
	}
	rest := validator
	for _, f := range in.from {
		phk, ok := s.hotkeys[f.Hotkey]
		if !ok {
			continue
		}
		share := mulDiv(validator, f.Proportion, total)
		if phk.Owner != owner {
			share -= mulDiv(share, take, 65535)
		}
		if share == 0 {
			continue
		}
		s.emitThroughHotkey(f.Hotkey, 0, share)
		rest -= share
	}
	s.emitThroughHotkey(n.Hotkey, server, rest)
}

// ChildKeysInfo is a hotkey's child-key state on a subnet.
type ChildKeysInfo struct {
	Netuid uint16  `json:"netuid"`
	Hotkey Address `json:"hotkey"`
	// Children are the applied children and the proportions lent to them.
	Children []Child `json:"children"`
	// Pending is a scheduled change of Children, if any.
	Pending *PendingChildren `json:"pending,omitempty"`
	// Parents are the hotkeys lending to this one and their proportions.
	Parents []Child `json:"parents"`
	// ChildkeyTake is the u16 share of dividends earned with parents'
	// stake that the hotkey keeps; ChildkeyTakeBlock is when it was set.
	ChildkeyTake      uint16 `json:"childkey_take"`
	ChildkeyTakeBlock uint64 `json:"childkey_take_block"`
	// Stake is the hotkey's own stake; EffectiveStake is what the
	// subnet's epoch counts: Stake less what it lends plus what its
	// parents lend it.
	Stake          uint64 `json:"stake"`
	EffectiveStake uint64 `json:"effective_stake"`
}

// ChildKeys returns a hotkey's children, pending change, parents and
// childkey take on a subnet; ok is false if the subnet does not exist.
func (s *State) ChildKeys(netuid uint16, hotkey Address) (ChildKeysInfo, bool) {
	if _, ok := s.subnets[netuid]; !ok {
		return ChildKeysInfo{}, false
	}
	info := ChildKeysInfo{Netuid: netuid, Hotkey: hotkey, Children: []Child{}, Parents: []Child{}, Stake: s.hotkeyStake(hotkey)}
	eff := info.Stake
	if r, ok := s.ch.recs[childKey{netuid, hotkey}]; ok {
		info.Children = append(info.Children, r.children...)
		if r.pending != nil {
			info.Pending = &PendingChildren{Children: append([]Child{}, r.pending.Children...), ApplyAt: r.pending.ApplyAt}
		}
		info.ChildkeyTake, info.ChildkeyTakeBlock = r.take, r.takeBlock
		for _, c := range r.children {
			eff -= lent(info.Stake, c.Proportion)
		}
	}
	for _, p := range s.ch.parentsOf(netuid, hotkey) {
		info.Parents = append(info.Parents, p)
		eff += lent(s.hotkeyStake(p.Hotkey), p.Proportion)
	}
	info.EffectiveStake = eff
	return info, true
}

// checkChildSwap refuses a hotkey swap that would make the new hotkey its
// own child: old lends to it, applied or pending, on some subnet
// (subtensor's swap fails the same way).
func (s *State) checkChildSwap(old, nw Address) error {
	for _, netuid := range s.sortedNetuids() {
		r, ok := s.ch.recs[childKey{netuid, old}]
		if !ok {
			continue
		}
		lists := [][]Child{r.children}
		if r.pending != nil {
			lists = append(lists, r.pending.Children)
		}
		for _, list := range lists {
			for _, c := range list {
				if c.Hotkey == nw {
					return txErr(ErrInvalidChild, "%s is a child of %s on netuid %d: swapped, it would be its own child", nw, old, netuid)
				}
			}
		}
	}
	return nil
}

// renamedChild returns a copy of list with old replaced by nw, and
// whether old was there. If nw is there too, it takes old's proportion
// and old's entry goes (subtensor's upsert).
func renamedChild(list []Child, old, nw Address) ([]Child, bool) {
	i, j := -1, -1
	for k, c := range list {
		switch c.Hotkey {
		case old:
			i = k
		case nw:
			j = k
		}
	}
	if i < 0 {
		return list, false
	}
	out := make([]Child, 0, len(list))
	for k, c := range list {
		switch {
		case k == i && j >= 0:
			continue
		case k == i:
			c.Hotkey = nw
		case k == j:
			c.Proportion = list[i].Proportion
		}
		out = append(out, c)
	}
	return out, true
}

// moveChildRecords moves every child-key record of old to nw (a hotkey
// swap, which calls it after checkChildSwap): old's children, pending
// change and childkey take on each subnet become nw's, and old is replaced
// by nw in every other hotkey's children, applied and pending. nw has no
// records of its own (it has no account, so it never set any).
func (s *State) moveChildRecords(old, nw Address) {
	var keys []childKey
	for k := range s.ch.recs {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		if keys[i].netuid != keys[j].netuid {
			return keys[i].netuid < keys[j].netuid
		}
		return bytes.Compare(keys[i].hotkey[:], keys[j].hotkey[:]) < 0
	})
	for _, k := range keys {
		r := s.ch.recs[k]
		if k.hotkey == old {
			s.ch.link(k.netuid, old, r.children, false)
			if r.pending != nil {
				s.ch.pending--
			}
			delete(s.ch.recs, k)
			s.markChildren(k)
			nk := childKey{k.netuid, nw}
			s.ch.install(nk, r)
			s.markChildren(nk)
			continue
		}
		if next, ok := renamedChild(r.children, old, nw); ok {
			s.ch.link(k.netuid, k.hotkey, r.children, false)
			r.children = next
			s.ch.link(k.netuid, k.hotkey, r.children, true)
			s.markChildren(k)
		}
		if r.pending != nil {
			if next, ok := renamedChild(r.pending.Children, old, nw); ok {
				r.pending.Children = next
				s.markChildren(k)
			}
		}
	}
}
