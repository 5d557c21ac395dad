package chain

import (
	"github.com/cybertensor/cybertensor/chain/chainpb"
)

// MaxPayouts is how many of its last epoch payouts a delegate's record
// keeps.
const MaxPayouts = 16

// Payout is one epoch's validator emission a delegate paid its stakers.
type Payout struct {
	// Block is the block of the epoch (epochs of several subnets in one
	// block make one payout).
	Block uint64 `json:"block"`
	// Paid is the validator emission paid to the stakers, the owner's own
	// stake included, net of the take.
	Paid uint64 `json:"paid"`
	// Stake is the hotkey's total stake just before the block's first
	// payout.
	Stake uint64 `json:"stake"`
}

// returnPer1000 is what 1,000 tokens staked on the delegate through the
// given payouts earned, in base units: the sum over the payouts of
// floor(paid × 1000 × 10^9 / stake), saturating at 2^64-1.
func returnPer1000(payouts []Payout) uint64 {
	var sum uint64
	for _, p := range payouts {
		if p.Stake == 0 {
			continue
		}
		r := mulDiv(p.Paid, 1000*BaseUnitsPerToken, p.Stake)
		if sum+r < sum {
			return ^uint64(0)
		}
		sum += r
	}
	return sum
}

// recordPayout adds an epoch payout of paid (net of the take) to a
// delegate's history, before it changes the stake: a second payout in the
// same block adds to the first; the oldest drops out beyond MaxPayouts.
func (s *State) recordPayout(hotkey Address, hk *Hotkey, paid uint64) {
	if n := len(hk.Payouts); n > 0 && hk.Payouts[n-1].Block == s.height {
		last := &hk.Payouts[n-1]
		if last.Paid+paid < last.Paid {
			last.Paid = ^uint64(0)
		} else {
			last.Paid += paid
		}
		s.markHotkey(hotkey)
		return
	}
	if len(hk.Payouts) == MaxPayouts {
		hk.Payouts = append(hk.Payouts[:0], hk.Payouts[1:]...)
	}
	hk.Payouts = append(hk.Payouts, Payout{Block: s.height, Paid: paid, Stake: hk.Total})
	s.markHotkey(hotkey)
}

// execSetTake sets a delegate's take, signed by the hotkey's owner:
// lowering applies at once; raising only from take_rate_limit blocks after
// the delegate opened or last raised its take.
func (s *State) execSetTake(c *txContext, m *chainpb.SetTake) ([]Event, error) {
	coldkey := c.tx.Signer
	hotkey, err := addressFrom("hotkey", m.Hotkey)
	if err != nil {
		return nil, err
	}
	hk, err := s.ownedHotkey(coldkey, hotkey)
	if err != nil {
		return nil, err
	}
	if !hk.Delegate {
		return nil, txErr(ErrNotDelegate, "%s", hotkey)
	}
	g := s.g.Globals
	take := uint64(m.Take)
	if take > g.MaxTake {
		return nil, txErr(ErrInvalidTake, "take %d > max_take %d", take, g.MaxTake)
	}
	if take < g.MinTake {
		return nil, txErr(ErrTakeTooLow, "take %d < min_take %d", take, g.MinTake)
	}
	old := uint64(hk.Take)
	if take == old {
		return nil, txErr(ErrTakeUnchanged, "take of %s is %d", hotkey, old)
	}
	raise := take > old
	if next, limited := s.nextTakeRaise(hk); raise && limited && s.height < next {
		return nil, txErr(ErrTakeRateLimit, "take set at block %d, take_rate_limit %d blocks: next raise at block %d", hk.TakeRaisedAt, g.TakeRateLimit, next)
	}
	if c.check {
		return nil, nil
	}
	hk.Take = uint16(take)
	typ := "take_decreased"
	if raise {
		hk.TakeRaisedAt = s.height
		typ = "take_increased"
	}
	s.markHotkey(hotkey)
	return []Event{event(typ, "hotkey", hotkey.String(), "take", u64s(take), "previous", u64s(old))}, nil
}

// nextTakeRaise returns the first block at which hk may raise its take,
// and whether there is such a limit at all.
func (s *State) nextTakeRaise(hk *Hotkey) (uint64, bool) {
	limit := s.g.Globals.TakeRateLimit
	if limit == 0 || hk.TakeRaisedAt == 0 {
		return 0, false
	}
	return hk.TakeRaisedAt + limit, true
}

// DelegateInfo describes a delegate: its stake, take and recent payouts.
type DelegateInfo struct {
	HotkeyInfo
	// TakeRaisedAt is the block the delegate opened or last raised its
	// take.
	TakeRaisedAt uint64 `json:"take_raised_at"`
	// NextTakeRaise is the first block at which the take may be raised
	// again (0: at any block).
	NextTakeRaise uint64 `json:"next_take_raise"`
	// Nominators is the number of coldkeys with stake on the delegate
	// (its owner among them if it staked).
	Nominators int `json:"nominators"`
	// Payouts are the last epoch payouts, oldest first.
	Payouts []Payout `json:"payouts"`
	// ReturnPer1000 is what 1,000 tokens staked on the delegate through
	// the payouts earned, in base units: the sum over Payouts of
	// floor(paid × 1000 × 10^9 / stake).
	ReturnPer1000 uint64 `json:"return_per_1000"`
}

func (s *State) delegateInfo(h Address, hk *Hotkey) DelegateInfo {
	info, _ := s.Hotkey(h)
	d := DelegateInfo{
		HotkeyInfo: info, TakeRaisedAt: hk.TakeRaisedAt, Nominators: len(hk.Stakes),
		Payouts: append([]Payout{}, hk.Payouts...), ReturnPer1000: returnPer1000(hk.Payouts),
	}
	if next, ok := s.nextTakeRaise(hk); ok {
		d.NextTakeRaise = next
	}
	return d
}

// Delegate returns a delegate; ok is false if the hotkey is not one.
func (s *State) Delegate(h Address) (DelegateInfo, bool) {
	hk, ok := s.hotkeys[h]
	if !ok || !hk.Delegate {
		return DelegateInfo{}, false
	}
	return s.delegateInfo(h, hk), true
}

// delegateKeys returns the delegate hotkeys in address order.
func (s *State) delegateKeys() []Address {
	var keys []Address
	for h, hk := range s.hotkeys {
		if hk.Delegate {
			keys = append(keys, h)
		}
	}
	sortAddresses(keys)
	return keys
}

// Delegates lists the delegates in hotkey address order.
func (s *State) Delegates() []DelegateInfo {
	keys := s.delegateKeys()
	out := make([]DelegateInfo, 0, len(keys))
	for _, h := range keys {
		out = append(out, s.delegateInfo(h, s.hotkeys[h]))
	}
	return out
}

// DelegationInfo is one coldkey's stake on one delegate.
type DelegationInfo struct {
	Coldkey Address `json:"coldkey"`
	Hotkey  Address `json:"hotkey"`
	Owner   Address `json:"owner"`
	// Stake is the coldkey's stake on the delegate; TotalStake everyone's.
	Stake      uint64 `json:"stake"`
	TotalStake uint64 `json:"total_stake"`
	Take       uint16 `json:"take"`
	// ReturnPer1000 and ReturnEpochs are the delegate's (DelegateInfo).
	ReturnPer1000 uint64 `json:"return_per_1000"`
	ReturnEpochs  int    `json:"return_epochs"`
}

// Delegations lists coldkey's stakes on delegates, in hotkey address
// order.
func (s *State) Delegations(coldkey Address) []DelegationInfo {
	out := []DelegationInfo{}
	for _, h := range s.delegateKeys() {
		hk := s.hotkeys[h]
		st, ok := hk.Stakes[coldkey]
		if !ok {
			continue
		}
		out = append(out, DelegationInfo{
			Coldkey: coldkey, Hotkey: h, Owner: hk.Owner, Stake: st, TotalStake: hk.Total, Take: hk.Take,
			ReturnPer1000: returnPer1000(hk.Payouts), ReturnEpochs: len(hk.Payouts),
		})
	}
	return out
}
