package chain

import (
	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// This file holds stake moves (move_stake, transfer_stake), the hotkey
// swap, and the per-coldkey queries behind "wallet overview" and "wallet
// inspect".

// execMoveStake moves amount of the signer's stake from one hotkey to
// another, as subtensor's move_stake does within a subnet. The
// destination must accept the signer's stake as add_stake would (owned by
// the signer, or a delegate). It counts against the coldkey's
// tx_rate_limit like add_stake and remove_stake.
func (s *State) execMoveStake(c *txContext, m *chainpb.MoveStake) ([]Event, error) {
	coldkey := c.tx.Signer
	origin, err := addressFrom("origin_hotkey", m.OriginHotkey)
	if err != nil {
		return nil, err
	}
	dest, err := addressFrom("destination_hotkey", m.DestinationHotkey)
	if err != nil {
		return nil, err
	}
	if origin == dest {
		return nil, txErr(ErrSameHotkey, "%s", origin)
	}
	if m.Amount == 0 {
		return nil, txErr(ErrInvalidAmount, "move of 0")
	}
	from, ok := s.hotkeys[origin]
	if !ok {
		return nil, txErr(ErrNotRegistered, "origin hotkey %s has no account", origin)
	}
	if _, err := s.stakeableBy(coldkey, dest, "destination hotkey"); err != nil {
		return nil, err
	}
	if have := from.Stakes[coldkey]; have < m.Amount {
		return nil, txErr(ErrNotEnoughStake, "stake %s on %s < %s", tokens(have), origin, tokens(m.Amount))
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.subStake(coldkey, origin, m.Amount)
	s.addStake(coldkey, dest, m.Amount)
	s.account(coldkey).LastTxBlock = s.height
	s.markAccount(coldkey)
	return []Event{event("stake_moved", "coldkey", coldkey.String(), "origin_hotkey", origin.String(), "destination_hotkey", dest.String(), "amount", u64s(m.Amount))}, nil
}

// execTransferStake gives amount of the signer's stake on a hotkey to
// another coldkey, on the same hotkey, as subtensor's transfer_stake
// does. The receiving coldkey must be one that could stake on the hotkey
// itself (its owner, or any coldkey if the hotkey is a delegate), so that
// emission reaches every staker. It counts against the signer's
// tx_rate_limit.
func (s *State) execTransferStake(c *txContext, m *chainpb.TransferStake) ([]Event, error) {
	coldkey := c.tx.Signer
	dest, err := addressFrom("destination_coldkey", m.DestinationColdkey)
	if err != nil {
		return nil, err
	}
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	if dest == coldkey {
		return nil, txErr(ErrSameColdkey, "%s", dest)
	}
	if m.Amount == 0 {
		return nil, txErr(ErrInvalidAmount, "transfer of 0 stake")
	}
	hk, err := s.stakeableBy(dest, hotkey, "hotkey")
	if err != nil {
		return nil, err
	}
	if have := hk.Stakes[coldkey]; have < m.Amount {
		return nil, txErr(ErrNotEnoughStake, "stake %s on %s < %s", tokens(have), hotkey, tokens(m.Amount))
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	if c.check {
		return nil, nil
	}
	s.subStake(coldkey, hotkey, m.Amount)
	s.addStake(dest, hotkey, m.Amount)
	s.account(coldkey).LastTxBlock = s.height
	s.markAccount(coldkey)
	return []Event{event("stake_transferred", "coldkey", coldkey.String(), "destination_coldkey", dest.String(), "hotkey", hotkey.String(), "amount", u64s(m.Amount))}, nil
}

// execSwapHotkey moves everything of a hotkey to a new, unused one, as
// subtensor's swap_hotkey does on all subnets: signed by the owner
// coldkey, refused inside the coldkey's tx_rate_limit, and paid with
// hotkey_swap_cost, which is burned.
func (s *State) execSwapHotkey(c *txContext, m *chainpb.SwapHotkey) ([]Event, error) {
	coldkey := c.tx.Signer
	old, err := addressFrom("old_hotkey", m.OldHotkey)
	if err != nil {
		return nil, err
	}
	nw, err := addressFrom("new_hotkey", m.NewHotkey)
	if err != nil {
		return nil, err
	}
	if _, err := s.ownedHotkey(coldkey, old); err != nil {
		return nil, err
	}
	if old == nw {
		return nil, txErr(ErrSameHotkey, "%s", old)
	}
	if _, used := s.hotkeys[nw]; used {
		return nil, txErr(ErrHotkeyInUse, "%s already has an account", nw)
	}
	if s.registeredAnywhere(nw) {
		return nil, txErr(ErrHotkeyInUse, "%s is registered", nw)
	}
	if err := s.checkChildSwap(old, nw); err != nil {
		return nil, err
	}
	if err := s.txRateLimited(coldkey); err != nil {
		return nil, err
	}
	cost := s.g.Globals.HotkeySwapCost
	if bal := s.balance(coldkey); bal < cost {
		return nil, txErr(ErrNotEnoughBalanceSwap, "balance %s < hotkey_swap_cost %s", tokens(bal), tokens(cost))
	}
	if c.check {
		return nil, nil
	}
	s.debit(coldkey, cost)
	s.g.TotalIssuance -= cost
	s.dirty.globals = true
	s.swapHotkeyRecords(old, nw)
	s.account(coldkey).LastTxBlock = s.height
	s.markAccount(coldkey)
	return []Event{event("hotkey_swapped", "coldkey", coldkey.String(), "old_hotkey", old.String(), "new_hotkey", nw.String(), "burned", u64s(cost))}, nil
}

// swapHotkeyRecords gives everything old has to nw, which has nothing: the
// Hotkey record (owner, delegation, take, every coldkey's stake), and on
// every subnet, the root network included, old's uid with its neuron
// (weights, bonds, scores, weight commit, commitment). The axon is
// cleared: it is old's libp2p identity (peer IDs derive from the hotkey).
// old is left with no record and no registration. A weight commit is kept
// with its block, but its hash binds old, so the new hotkey commits again
// rather than reveal it. Its child-key records move too (moveChildRecords).
func (s *State) swapHotkeyRecords(old, nw Address) {
	if hk, ok := s.hotkeys[old]; ok {
		delete(s.hotkeys, old)
		s.hotkeys[nw] = hk
		s.markHotkey(old)
		s.markHotkey(nw)
	}
	for _, netuid := range s.sortedNetuids() {
		sub := s.subnets[netuid]
		uid, ok := sub.uids[old]
		if !ok {
			continue
		}
		delete(sub.uids, old)
		sub.uids[nw] = uid
		n := sub.neurons[uid]
		n.Hotkey = nw
		n.Axon = nil
		s.markNeuron(netuid, uid)
	}
	s.moveChildRecords(old, nw)
}

// Registration is one uid a hotkey holds: where, and how it is doing.
type Registration struct {
	Netuid          uint16 `json:"netuid"`
	UID             uint16 `json:"uid"`
	Stake           uint64 `json:"stake"`
	Emission        uint64 `json:"emission"`
	Incentive       uint16 `json:"incentive"`
	Dividends       uint16 `json:"dividends"`
	Active          bool   `json:"active"`
	ValidatorPermit bool   `json:"validator_permit"`
	LastUpdate      uint64 `json:"last_update"`
	RegisteredAt    uint64 `json:"registered_at"`
	Axon            *Axon  `json:"axon,omitempty"`
}

// OwnedHotkey is one hotkey of a coldkey with its uid on every subnet.
type OwnedHotkey struct {
	Hotkey   Address `json:"hotkey"`
	Delegate bool    `json:"delegate"`
	Take     uint16  `json:"take"`
	// OwnStake is the owner coldkey's stake on it; TotalStake everyone's.
	OwnStake      uint64         `json:"own_stake"`
	TotalStake    uint64         `json:"total_stake"`
	Registrations []Registration `json:"registrations"`
}

// Overview lists every hotkey coldkey owns, in address order, each with
// its registrations in netuid order: what "wallet overview" prints.
func (s *State) Overview(coldkey Address) []OwnedHotkey {
	var keys []Address
	for h, hk := range s.hotkeys {
		if hk.Owner == coldkey {
			keys = append(keys, h)
		}
	}
	sortAddresses(keys)
	netuids := s.sortedNetuids()
	out := make([]OwnedHotkey, 0, len(keys))
	for _, h := range keys {
		hk := s.hotkeys[h]
		o := OwnedHotkey{Hotkey: h, Delegate: hk.Delegate, Take: hk.Take, OwnStake: hk.Stakes[coldkey], TotalStake: hk.Total, Registrations: []Registration{}}
		for _, netuid := range netuids {
			sub := s.subnets[netuid]
			uid, ok := sub.uids[h]
			if !ok {
				continue
			}
			n := sub.neurons[uid]
			r := Registration{
				Netuid: netuid, UID: uid, Stake: hk.Total, Emission: n.Emission, Incentive: n.Incentive, Dividends: n.Dividends,
				Active: n.Active, ValidatorPermit: n.ValidatorPermit, LastUpdate: n.LastUpdate, RegisteredAt: n.RegisteredAt,
			}
			if n.Axon != nil {
				a := *n.Axon
				a.Multiaddrs = append([]string(nil), a.Multiaddrs...)
				a.Protocols = append([]string(nil), a.Protocols...)
				r.Axon = &a
			}
			o.Registrations = append(o.Registrations, r)
		}
		out = append(out, o)
	}
	return out
}

// StakeEntry is a coldkey's stake on one hotkey, with the hotkey's owner
// and delegate take.
type StakeEntry struct {
	Hotkey   Address `json:"hotkey"`
	Owner    Address `json:"owner"`
	Delegate bool    `json:"delegate"`
	Take     uint16  `json:"take"`
	Stake    uint64  `json:"stake"`
	// TotalStake is everyone's stake on the hotkey.
	TotalStake uint64   `json:"total_stake"`
	Netuids    []uint16 `json:"netuids"`
}

// StakesOf lists every hotkey coldkey has stake on, its own and
// delegates', in hotkey address order: what "wallet inspect" prints.
func (s *State) StakesOf(coldkey Address) []StakeEntry {
	var keys []Address
	for h, hk := range s.hotkeys {
		if hk.Stakes[coldkey] > 0 {
			keys = append(keys, h)
		}
	}
	sortAddresses(keys)
	netuids := s.sortedNetuids()
	out := make([]StakeEntry, 0, len(keys))
	for _, h := range keys {
		hk := s.hotkeys[h]
		e := StakeEntry{Hotkey: h, Owner: hk.Owner, Delegate: hk.Delegate, Take: hk.Take, Stake: hk.Stakes[coldkey], TotalStake: hk.Total, Netuids: []uint16{}}
		for _, n := range netuids {
			if _, ok := s.subnets[n].uids[h]; ok {
				e.Netuids = append(e.Netuids, n)
			}
		}
		out = append(out, e)
	}
	return out
}
