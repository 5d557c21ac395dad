package chain

// This file is the read side of registration prices: what registering a
// neuron (the burn) or a subnet (the lock) costs now, and where the burn
// goes next. A client quotes a price here and sends it as max_burn or
// max_lock, so a price that moves before inclusion refuses the
// registration instead of charging more.

// BurnCost is a subnet's registration burn and the adjustment that moves
// it.
type BurnCost struct {
	Netuid uint16 `json:"netuid"`
	// Block is the last applied block; Burn is what a burned registration
	// in the next block pays unless that block adjusts it.
	Block uint64 `json:"block"`
	Burn  uint64 `json:"burn"`
	// NextBurn is what the adjustment at NextAdjustmentBlock makes the
	// burn if no further registrations arrive before it.
	NextBurn            uint64 `json:"next_burn"`
	NextAdjustmentBlock uint64 `json:"next_adjustment_block"`
	LastAdjustmentBlock uint64 `json:"last_adjustment_block"`
	// Registrations so far in this interval, all and burned.
	RegsThisInterval      uint64 `json:"regs_this_interval"`
	BurnRegsThisInterval  uint64 `json:"burn_regs_this_interval"`
	PowRegsThisInterval   uint64 `json:"pow_regs_this_interval"`
	TargetRegsPerInterval uint64 `json:"target_regs_per_interval"`
	AdjustmentInterval    uint64 `json:"adjustment_interval"`
	AdjustmentAlpha       uint64 `json:"adjustment_alpha"`
	MinBurn               uint64 `json:"min_burn"`
	MaxBurn               uint64 `json:"max_burn"`
}

// BurnCost returns a subnet's registration burn and its next adjustment;
// ok is false if the subnet does not exist.
func (s *State) BurnCost(netuid uint16) (BurnCost, bool) {
	sub, ok := s.subnets[netuid]
	if !ok {
		return BurnCost{}, false
	}
	p := sub.Params
	next := sub.LastAdjustmentBlock + p.AdjustmentInterval
	if next <= s.height {
		next = s.height + 1
	}
	_, nextBurn := adjustedPrices(sub)
	return BurnCost{
		Netuid: netuid, Block: s.height, Burn: p.Burn, NextBurn: nextBurn,
		NextAdjustmentBlock: next, LastAdjustmentBlock: sub.LastAdjustmentBlock,
		RegsThisInterval: sub.RegsThisInterval, BurnRegsThisInterval: sub.BurnRegsThisInterval, PowRegsThisInterval: sub.PowRegsThisInterval,
		TargetRegsPerInterval: p.TargetRegsPerInterval, AdjustmentInterval: p.AdjustmentInterval, AdjustmentAlpha: p.AdjustmentAlpha,
		MinBurn: p.MinBurn, MaxBurn: p.MaxBurn,
	}, true
}

// LockCost is what registering a subnet locks and how that cost decays.
type LockCost struct {
	// Amount is the lock cost at the last applied block (Block); it
	// decays by a step each block.
	Amount uint64 `json:"amount"`
	Block  uint64 `json:"block"`
	// LastLock and LastLockBlock are the previous subnet registration's
	// lock and block; the cost starts at twice LastLock there.
	LastLock          uint64 `json:"last_lock"`
	LastLockBlock     uint64 `json:"last_lock_block"`
	MinLockCost       uint64 `json:"min_lock_cost"`
	ReductionInterval uint64 `json:"reduction_interval"`
	DecayPerBlock     uint64 `json:"decay_per_block"`
	NetworkRateLimit  uint64 `json:"network_rate_limit"`
	LastRegisteredAt  uint64 `json:"last_registered_at"`
	SubnetLimit       uint64 `json:"subnet_limit"`
	Subnets           uint64 `json:"subnets"`
}

// LockCostInfo returns the subnet lock cost with what it is made of.
func (s *State) LockCostInfo() LockCost {
	return LockCost{
		Amount: s.NetworkLockCost(), Block: s.height,
		LastLock: s.g.NetworkLastLock, LastLockBlock: s.g.NetworkLastLockBlock,
		MinLockCost: s.g.Globals.NetworkMinLockCost, ReductionInterval: s.g.Globals.NetworkLockReductionInterval,
		DecayPerBlock:    s.g.NetworkLastLock / s.g.Globals.NetworkLockReductionInterval,
		NetworkRateLimit: s.g.Globals.NetworkRateLimit, LastRegisteredAt: s.g.NetworkLastRegistered,
		SubnetLimit: s.g.Globals.SubnetLimit, Subnets: uint64(len(s.subnets) - 1),
	}
}
