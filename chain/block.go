package chain

import (
	"fmt"
	"math/big"
	"sort"
)

// Block is the input of one state transition.
type Block struct {
	Height uint64
	// Hash identifies the block; registrations bind their proof of work
	// to it. The engine supplies it (CometBFT's header hash, or the local
	// engine's hash of the block).
	Hash []byte
	Txs  [][]byte
}

// TxResult is the outcome of one transaction in a block.
type TxResult struct {
	Hash   [32]byte `json:"hash"`
	Signer Address  `json:"signer"`
	// Code is 0 on success, else the TxError's code.
	Code   uint32  `json:"code"`
	Error  string  `json:"error,omitempty"`
	Events []Event `json:"events,omitempty"`
}

// BlockResult is the outcome of a block.
type BlockResult struct {
	Height  uint64     `json:"height"`
	AppHash []byte     `json:"app_hash"`
	Txs     []TxResult `json:"txs"`
	// Events are the block step's: emission split, epochs run.
	Events []Event `json:"events,omitempty"`

	records []record
}

// recentHashes is how many block hashes the state keeps for proof of work.
const recentHashes = 8

// ApplyBlock runs the block step (registration adjustment, the root
// epoch, emission and subnet epochs) and then the block's transactions,
// and computes the new app hash. It fails only on a block that does not
// follow the current height, and then changes nothing.
func (s *State) ApplyBlock(b Block) (*BlockResult, error) {
	if b.Height != s.height+1 {
		return nil, fmt.Errorf("chain: block %d does not follow height %d", b.Height, s.height)
	}
	if len(b.Hash) == 0 || len(b.Hash) > 64 {
		return nil, fmt.Errorf("chain: block %d hash of %d bytes (want 1 to 64)", b.Height, len(b.Hash))
	}
	s.height = b.Height
	s.recordBlockHash(b.Hash)
	res := &BlockResult{Height: b.Height}
	res.Events = s.blockStep()
	res.Txs = make([]TxResult, 0, len(b.Txs))
	for _, raw := range b.Txs {
		res.Txs = append(res.Txs, s.deliverTx(raw))
	}
	res.records = s.finishBlock()
	res.AppHash = s.AppHash()
	return res, nil
}

func (s *State) recordBlockHash(hash []byte) {
	s.g.RecentHashes = append(s.g.RecentHashes, blockHash{Height: s.height, Hash: append([]byte(nil), hash...)})
	if len(s.g.RecentHashes) > recentHashes {
		s.g.RecentHashes = s.g.RecentHashes[len(s.g.RecentHashes)-recentHashes:]
	}
	kept := s.g.UsedWork[:0]
	for _, w := range s.g.UsedWork {
		if s.height-w.Block < recentHashes {
			kept = append(kept, w)
		}
	}
	s.g.UsedWork = kept
	s.dirty.globals = true
}

// sortedNetuids returns the subnets' netuids in ascending order.
func (s *State) sortedNetuids() []uint16 {
	out := make([]uint16, 0, len(s.subnets))
	for n := range s.subnets {
		out = append(out, n)
	}
	sort.Slice(out, func(i, j int) bool { return out[i] < out[j] })
	return out
}

func (s *State) blockStep() []Event {
	var events []Event
	s.adjustRegistrations()
	if ev, ok := s.rootEpoch(); ok {
		events = append(events, ev)
	}
	events = append(events, s.applyPendingChildren()...)
	for _, netuid := range s.sortedNetuids() {
		if netuid == RootNetuid {
			continue
		}
		sub := s.subnets[netuid]
		if ev, ok := s.runSubnetEmission(sub); ok {
			events = append(events, ev)
			events = append(events, s.applySubnetBoundary(sub)...)
		}
	}
	return events
}

// adjustRegistrations moves each subnet's difficulty and burn toward
// target_regs_per_interval every adjustment_interval blocks (cybernet's
// rules), and resets the per-block registration count.
func (s *State) adjustRegistrations() {
	for _, netuid := range s.sortedNetuids() {
		sub := s.subnets[netuid]
		p := &sub.Params
		if s.height-sub.LastAdjustmentBlock >= p.AdjustmentInterval {
			p.Difficulty, p.Burn = adjustedPrices(sub)
			sub.LastAdjustmentBlock = s.height
			sub.RegsThisInterval, sub.PowRegsThisInterval, sub.BurnRegsThisInterval = 0, 0, 0
			s.markSubnet(netuid)
		}
		if sub.RegsThisBlock != 0 {
			sub.RegsThisBlock = 0
			s.markSubnet(netuid)
		}
	}
}

// adjustedPrices is what an adjustment makes of sub's difficulty and burn
// given the registrations of its interval so far: which of the two moves
// depends on whether registrations were above target and whether more
// were by proof of work or by burning (both move when the counts tie).
func adjustedPrices(sub *Subnet) (difficulty, burn uint64) {
	p := &sub.Params
	regs, target := sub.RegsThisInterval, p.TargetRegsPerInterval
	pow, burned := sub.PowRegsThisInterval, sub.BurnRegsThisInterval
	adjustDifficulty, adjustBurn := false, false
	switch {
	case regs > target && pow > burned:
		adjustDifficulty = true
	case regs > target && pow < burned:
		adjustBurn = true
	case regs <= target && pow > burned:
		adjustBurn = true
	case regs <= target && pow < burned:
		adjustDifficulty = true
	default:
		adjustDifficulty, adjustBurn = true, true
	}
	difficulty, burn = p.Difficulty, p.Burn
	if adjustDifficulty {
		difficulty = adjustTowardTarget(p.Difficulty, regs, target, p.AdjustmentAlpha, p.MinDifficulty, p.MaxDifficulty)
	}
	if adjustBurn {
		burn = adjustTowardTarget(p.Burn, regs, target, p.AdjustmentAlpha, p.MinBurn, p.MaxBurn)
	}
	return difficulty, burn
}

// adjustTowardTarget is cybernet's adjust_difficulty/adjust_burn:
// next = α·current + (1−α)·current·(regs+target)/(2·target), α =
// alpha/2^64, clamped to [min, max]. Computed exactly with integers.
func adjustTowardTarget(current, regs, target, alpha, min, max uint64) uint64 {
	cur := new(big.Int).SetUint64(current)
	two64 := new(big.Int).Lsh(big.NewInt(1), 64)
	// updated·2·target = current·(regs+target)
	num := new(big.Int).Mul(cur, new(big.Int).SetUint64(regs+target))
	den := new(big.Int).SetUint64(2 * target)
	// next = (alpha·current·den + (2^64−alpha)·num) / (2^64·den)
	a := new(big.Int).SetUint64(alpha)
	t1 := new(big.Int).Mul(a, cur)
	t1.Mul(t1, den)
	t2 := new(big.Int).Sub(two64, a)
	t2.Mul(t2, num)
	t1.Add(t1, t2)
	t1.Quo(t1, new(big.Int).Mul(two64, den))
	if t1.Cmp(new(big.Int).SetUint64(max)) >= 0 {
		return max
	}
	if t1.Cmp(new(big.Int).SetUint64(min)) <= 0 {
		return min
	}
	return t1.Uint64()
}

// runSubnetEmission accrues the subnet's emission and runs its epoch at its
// tempo, paying the result into stake.
func (s *State) runSubnetEmission(sub *Subnet) (Event, bool) {
	if sub.EmissionPerBlock != 0 {
		sub.PendingEmission += sub.EmissionPerBlock
		s.markSubnet(sub.Netuid)
	}
	if BlocksUntilNextEpoch(sub.Netuid, sub.Params.Tempo, s.height) != 0 {
		return Event{}, false
	}
	pending := sub.PendingEmission
	sub.PendingEmission = 0
	sub.LastEpochBlock = s.height
	s.markSubnet(sub.Netuid)
	if len(sub.neurons) == 0 {
		return event("epoch", "netuid", u64s(uint64(sub.Netuid)), "neurons", "0", "emission", "0"), true
	}
	if shares := s.mech.sharesOf(sub.Netuid); shares != nil {
		return s.runMechanismEpochs(sub, pending, shares), true
	}
	in := &EpochInput{
		Block: s.height, Emission: pending,
		Kappa: sub.Params.Kappa, BondsMovingAverage: sub.Params.BondsMovingAverage, BondsPenalty: sub.Params.BondsPenalty,
		ActivityCutoff: sub.Params.ActivityCutoff, MaxAllowedValidators: sub.Params.MaxAllowedValidators,
		Neurons: make([]EpochNeuron, len(sub.neurons)),
	}
	for i, n := range sub.neurons {
		in.Neurons[i] = EpochNeuron{
			Stake: s.hotkeyStake(n.Hotkey), LastUpdate: n.LastUpdate, RegisteredAt: n.RegisteredAt,
			ValidatorPermit: n.ValidatorPermit, Weights: n.Weights, Bonds: n.Bonds,
		}
	}
	inherited := s.applyChildStakes(sub, in.Neurons)
	out, err := s.epoch(in)
	if err != nil || len(out) != len(sub.neurons) {
		// The epoch is pure and its input valid by construction; an error
		// is a bug. Skip paying rather than fork on a partial result.
		return event("epoch_failed", "netuid", u64s(uint64(sub.Netuid)), "error", fmt.Sprint(err)), true
	}
	var paid uint64
	for _, r := range out {
		paid += r.ServerEmission + r.ValidatorEmission
		if paid > pending {
			return event("epoch_failed", "netuid", u64s(uint64(sub.Netuid)), "error", "emission above pending"), true
		}
	}
	for i, r := range out {
		n := sub.neurons[i]
		n.Active, n.ValidatorPermit = r.Active, r.ValidatorPermit
		n.Rank, n.Trust, n.Consensus, n.Incentive, n.Dividends = r.Rank, r.Trust, r.Consensus, r.Incentive, r.Dividends
		n.ValidatorTrust, n.PruningScore, n.Emission = r.ValidatorTrust, r.PruningScore, r.Emission
		n.Bonds = r.Bonds
		s.markNeuron(sub.Netuid, uint16(i))
		s.payValidator(sub, inherited, uint16(i), r.ServerEmission, r.ValidatorEmission)
	}
	s.g.TotalIssuance += paid
	s.dirty.globals = true
	return event("epoch", "netuid", u64s(uint64(sub.Netuid)), "neurons", u64s(uint64(len(sub.neurons))), "emission", u64s(paid)), true
}

// rootEpoch splits block emission between subnets at the root tempo, as
// cybernet's root_epoch does: root members' stake-weighted weights over
// subnets (ranks), times a sigmoid of the stake share that voted for each
// subnet at all (consensus), normalized. When the root network cannot
// decide (no members, no stake or no weights), emission is split equally,
// so a fresh chain still pays its subnets.
func (s *State) rootEpoch() (Event, bool) {
	root := s.subnets[RootNetuid]
	if BlocksUntilNextEpoch(RootNetuid, root.Params.Tempo, s.height) != 0 {
		return Event{}, false
	}
	var netuids []uint16
	for _, n := range s.sortedNetuids() {
		if n != RootNetuid {
			netuids = append(netuids, n)
		}
	}
	if len(netuids) == 0 {
		return Event{}, false
	}
	shares := rootShares(s, root, netuids)
	total := s.g.Globals.BlockEmission
	for i, n := range netuids {
		sub := s.subnets[n]
		v := mulDivBig(total, shares[i])
		if sub.EmissionPerBlock != v {
			sub.EmissionPerBlock = v
			s.markSubnet(n)
		}
	}
	return event("emission_split", "subnets", u64s(uint64(len(netuids)))), true
}

// mulDivBig returns floor(total·share) for a share in [0, 1].
func mulDivBig(total uint64, share *big.Rat) uint64 {
	v := new(big.Rat).Mul(new(big.Rat).SetInt(new(big.Int).SetUint64(total)), share)
	q := new(big.Int).Quo(v.Num(), v.Denom())
	return q.Uint64()
}

// rootShares returns each subnet's share of emission, summing to 1.
// Arithmetic is exact (rationals) except the sigmoid, which uses a fixed
// precision series; both are deterministic on every machine.
func rootShares(s *State, root *Subnet, netuids []uint16) []*big.Rat {
	equal := func() []*big.Rat {
		out := make([]*big.Rat, len(netuids))
		for i := range out {
			out[i] = big.NewRat(1, int64(len(netuids)))
		}
		return out
	}
	index := map[uint16]int{}
	for i, n := range netuids {
		index[n] = i
	}
	totalStake := new(big.Rat)
	for _, nr := range root.neurons {
		totalStake.Add(totalStake, new(big.Rat).SetInt(new(big.Int).SetUint64(s.hotkeyStake(nr.Hotkey))))
	}
	if totalStake.Sign() == 0 {
		return equal()
	}
	ranks := make([]*big.Rat, len(netuids))
	trust := make([]*big.Rat, len(netuids))
	for i := range ranks {
		ranks[i], trust[i] = new(big.Rat), new(big.Rat)
	}
	for _, nr := range root.neurons {
		stake := new(big.Rat).SetFrac(new(big.Int).SetUint64(s.hotkeyStake(nr.Hotkey)), totalStake.Num())
		var rowSum uint64
		for _, w := range nr.Weights {
			if _, ok := index[w.UID]; ok {
				rowSum += uint64(w.Value)
			}
		}
		if rowSum == 0 {
			continue
		}
		for _, w := range nr.Weights {
			j, ok := index[w.UID]
			if !ok || w.Value == 0 {
				continue
			}
			share := new(big.Rat).SetFrac64(int64(w.Value), int64(rowSum))
			ranks[j].Add(ranks[j], share.Mul(share, stake))
			trust[j].Add(trust[j], stake)
		}
	}
	kappa := new(big.Rat).SetFrac64(int64(root.Params.Kappa), 65535)
	rho := new(big.Rat).SetInt64(int64(root.Params.Rho))
	weighted := make([]*big.Rat, len(netuids))
	sum := new(big.Rat)
	for j := range netuids {
		x := new(big.Rat).Sub(trust[j], kappa)
		x.Mul(x, rho)
		weighted[j] = new(big.Rat).Mul(sigmoid(x), ranks[j])
		sum.Add(sum, weighted[j])
	}
	if sum.Sign() == 0 {
		return equal()
	}
	for j := range weighted {
		weighted[j].Quo(weighted[j], sum)
	}
	return weighted
}

// sigmoid returns 1/(1+e^(−x)) as an exact rational of a 2^-64-precision
// fixed-point evaluation: e^y by halving y until |y| < 2^-8, a 12-term
// Taylor series in 128-bit big.Float arithmetic, and repeated squaring.
// big.Float is software arithmetic with defined rounding, so every machine
// computes the same bits.
func sigmoid(x *big.Rat) *big.Rat {
	const prec = 128
	y := new(big.Float).SetPrec(prec).SetRat(x)
	y.Neg(y)
	halvings := 0
	limit := new(big.Float).SetPrec(prec).SetFloat64(1.0 / 256)
	abs := new(big.Float).SetPrec(prec)
	for abs.Abs(y); abs.Cmp(limit) > 0 && halvings < 64; abs.Abs(y) {
		y.Quo(y, new(big.Float).SetPrec(prec).SetInt64(2))
		halvings++
	}
	sum := new(big.Float).SetPrec(prec).SetInt64(1)
	term := new(big.Float).SetPrec(prec).SetInt64(1)
	for k := int64(1); k <= 12; k++ {
		term.Mul(term, y)
		term.Quo(term, new(big.Float).SetPrec(prec).SetInt64(k))
		sum.Add(sum, term)
	}
	for range halvings {
		sum.Mul(sum, sum)
	}
	one := new(big.Float).SetPrec(prec).SetInt64(1)
	den := new(big.Float).SetPrec(prec).Add(one, sum)
	res := new(big.Float).SetPrec(prec).Quo(one, den)
	// Round to 2^-64 so the rational stays small.
	scaled := new(big.Float).SetPrec(prec).SetMantExp(res, 64)
	i, _ := scaled.Int(nil)
	return new(big.Rat).SetFrac(i, new(big.Int).Lsh(big.NewInt(1), 64))
}
