package chain

import (
	"bytes"
	"errors"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func mBurnedMax(netuid uint32, hotkey Address, maxBurn uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: netuid, Hotkey: hotkey[:], MaxBurn: maxBurn}}}
}

func mRegisterNetworkMax(name string, maxLock uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: &chainpb.RegisterNetwork{Name: name, MaxLock: maxLock}}}
}

// assertRefusedLikeAnyRefusal checks that msg signed by k is refused with
// want, by CheckTx without touching the app hash, and in a block without
// changing anything a refused transaction does not change: the app hash
// after it equals that of a twin state (built by the same setup) whose
// block carried a zero transfer from k instead, which only consumes k's
// sequence number.
func assertRefusedLikeAnyRefusal(t *testing.T, setup func(t testing.TB) *harness, k *wallet.PrivateKey, msg *chainpb.Msg, want *TxError) {
	t.Helper()
	assertBlockRefusal(t, setup, k, msg, want, true)
}

// assertBlockRefusal is assertRefusedLikeAnyRefusal; checkNow says whether
// CheckTx against the current state must already refuse (not so when
// the refusal comes from the next block's step, e.g. a burn adjustment).
func assertBlockRefusal(t *testing.T, setup func(t testing.TB) *harness, k *wallet.PrivateKey, msg *chainpb.Msg, want *TxError, checkNow bool) {
	t.Helper()
	a, b := setup(t), setup(t)
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("setup is not deterministic")
	}
	raw := a.tx(k, msg)
	hash := a.s.AppHash()
	if err := a.s.CheckTx(raw); checkNow && !errors.Is(err, want) {
		t.Fatalf("CheckTx: %v, want %s", err, want.Name)
	}
	if !bytes.Equal(a.s.AppHash(), hash) || a.s.Account(addr(k)).Sequence != b.s.Account(addr(k)).Sequence || !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("CheckTx changed the state")
	}
	ra := a.block(raw)
	if ra.Txs[0].Code != want.Code {
		t.Fatalf("code %d (%s), want %d (%s)", ra.Txs[0].Code, ra.Txs[0].Error, want.Code, want.Name)
	}
	rb := b.block(b.tx(k, mTransfer(addr(kPoor), 0)))
	if rb.Txs[0].Code != ErrInvalidAmount.Code {
		t.Fatalf("twin's zero transfer: %s", rb.Txs[0].Error)
	}
	if !bytes.Equal(ra.AppHash, rb.AppHash) {
		t.Fatalf("app hash %x after the refusal, %x after a refused zero transfer", ra.AppHash, rb.AppHash)
	}
}

// max_burn at the boundary: a limit at or above the burn registers and
// pays the burn (not the limit); one base unit below is refused with
// burn_above_limit and changes nothing; 0 means no limit.
func TestMaxBurnBoundary(t *testing.T) {
	burn := scenario(t).s.subnets[1].Params.Burn
	for _, tc := range []struct {
		name    string
		maxBurn uint64
		want    *TxError
	}{
		{"no limit", 0, nil},
		{"limit above", burn + 1, nil},
		{"limit equal", burn, nil},
		{"burn = limit + 1", burn - 1, ErrBurnAboveLimit},
		{"limit 1", 1, ErrBurnAboveLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := mBurnedMax(1, addr(hFree), tc.maxBurn)
			if tc.want != nil {
				assertRefusedLikeAnyRefusal(t, scenario, kOwner, msg, tc.want)
				return
			}
			h := scenario(t)
			bal, issuance := h.s.Account(addr(kOwner)).Balance, h.s.Supply().TotalIssuance
			h.ok(kOwner, msg)
			if _, ok := h.s.NeuronByHotkey(1, addr(hFree)); !ok {
				t.Fatal("not registered")
			}
			if got := h.s.Account(addr(kOwner)).Balance; got != bal-burn {
				t.Fatalf("paid %d, want the burn %d", bal-got, burn)
			}
			if h.s.Supply().TotalIssuance != issuance-burn {
				t.Fatal("burn not taken from issuance")
			}
		})
	}
}

// max_lock at the boundary, like max_burn. The lock cost decays each
// block, so the boundary is the cost in the block that includes the
// registration: what a twin state reads after one more block.
func TestMaxLockBoundary(t *testing.T) {
	next := scenario(t)
	next.block()
	cost := next.s.NetworkLockCost()
	if cost == scenario(t).s.NetworkLockCost() {
		t.Fatal("the lock cost does not decay: the boundary below proves nothing")
	}
	for _, tc := range []struct {
		name    string
		maxLock uint64
		want    *TxError
	}{
		{"no limit", 0, nil},
		{"limit above", cost + 1, nil},
		{"limit equal", cost, nil},
		{"lock = limit + 1", cost - 1, ErrLockAboveLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			msg := mRegisterNetworkMax("beta", tc.maxLock)
			if tc.want != nil {
				assertRefusedLikeAnyRefusal(t, scenario, kOther, msg, tc.want)
				return
			}
			h := scenario(t)
			bal := h.s.Account(addr(kOther)).Balance
			h.ok(kOther, msg)
			sub, ok := h.s.Subnet(2)
			if !ok || sub.Locked != cost || h.s.Account(addr(kOther)).Balance != bal-cost {
				t.Fatalf("subnet %+v locked, want %d", sub, cost)
			}
		})
	}
}

// burnGenesis has cheap adjustment: target 1 registration per 10-block
// interval, alpha 1/2.
func burnGenesis() Genesis {
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.SubnetDefaults.TargetRegsPerInterval = 1
	gen.SubnetDefaults.AdjustmentInterval = 10
	gen.SubnetDefaults.AdjustmentAlpha = 1 << 63
	gen.SubnetDefaults.Burn = 1000
	gen.SubnetDefaults.MinBurn = 100
	gen.SubnetDefaults.MaxBurn = 1_000_000
	return gen
}

// untilAdjusted applies blocks until netuid's next adjustment has run and
// returns the block it ran in.
func untilAdjusted(h *harness, netuid uint16) uint64 {
	h.t.Helper()
	last := h.s.subnets[netuid].LastAdjustmentBlock
	for h.s.subnets[netuid].LastAdjustmentBlock == last {
		h.block()
	}
	return h.s.Height()
}

// The burn follows demand, exactly as chain/doc.go states: each interval
// next = α·burn + (1−α)·burn·(r+t)/(2t), floored and clamped. With α = 1/2
// and t = 1 that is burn·(3+r)/4: 3 burned registrations take 1000 to
// 1500; none take it to 1125, then 843; one (at target, burned) moves the
// difficulty and leaves the burn; two take 843 to 1053. The preview
// (BurnCost.NextBurn) names each value before its adjustment.
func TestBurnFollowsDemand(t *testing.T) {
	h := newHarness(t, burnGenesis())
	h.ok(kOwner, mRegisterNetwork("alpha"))
	hk := 100
	register := func(n int) {
		for range n {
			h.ok(kOwner, mBurned(1, addr(testKey(hk))))
			hk++
		}
	}
	for i, step := range []struct {
		regs int
		burn uint64
	}{{3, 1500}, {0, 1125}, {0, 843}, {1, 843}, {2, 1053}} {
		register(step.regs)
		quote, _ := h.s.BurnCost(1)
		if quote.RegsThisInterval != uint64(step.regs) || quote.NextBurn != step.burn {
			t.Fatalf("interval %d: preview %+v, want next_burn %d after %d registrations", i, quote, step.burn, step.regs)
		}
		at := untilAdjusted(h, 1)
		if at != quote.NextAdjustmentBlock {
			t.Fatalf("interval %d: adjusted at block %d, preview said %d", i, at, quote.NextAdjustmentBlock)
		}
		if got := h.s.subnets[1].Params.Burn; got != step.burn {
			t.Fatalf("interval %d: burn %d, want %d", i, got, step.burn)
		}
	}
	if d := h.s.subnets[1].Params.Difficulty; d == burnGenesis().SubnetDefaults.Difficulty {
		t.Fatal("an interval at target with burned registrations did not move the difficulty")
	}
	// Without demand the burn falls to min_burn and stays there; at most
	// 3·target registrations fit an interval, so it rises by at most
	// (3+3)/4 = 3/2 per interval and stops at max_burn.
	for range 20 {
		untilAdjusted(h, 1)
	}
	if got := h.s.subnets[1].Params.Burn; got != 100 {
		t.Fatalf("burn after 20 idle intervals %d, want min_burn 100", got)
	}
	h.ok(kRoot, mSudo(1, "max_burn", 200))
	register(3)
	untilAdjusted(h, 1)
	if got := h.s.subnets[1].Params.Burn; got != 150 {
		t.Fatalf("burn %d, want 150", got)
	}
	register(3)
	untilAdjusted(h, 1)
	if got := h.s.subnets[1].Params.Burn; got != 200 {
		t.Fatalf("burn %d, want max_burn 200 (225 clamped)", got)
	}
}

// The price moves between a quote and inclusion: a registration sent with
// max_burn = the quote is refused once the adjustment raised the burn,
// and one sent with the preview's next_burn pays exactly that.
func TestMaxBurnRefusesAMovedPrice(t *testing.T) {
	setup := func(t testing.TB) *harness {
		h := newHarness(t, burnGenesis())
		h.ok(kOwner, mRegisterNetwork("alpha"))
		for i := range 3 {
			h.ok(kOwner, mBurned(1, addr(testKey(100+i))))
		}
		// Stop one block before the adjustment.
		for bc, _ := h.s.BurnCost(1); h.s.Height()+1 < bc.NextAdjustmentBlock; bc, _ = h.s.BurnCost(1) {
			h.block()
		}
		return h
	}
	quote, _ := setup(t).s.BurnCost(1)
	if quote.Burn != 1000 || quote.NextBurn != 1500 || quote.NextAdjustmentBlock != setup(t).s.Height()+1 {
		t.Fatalf("quote %+v", quote)
	}
	// The next block adjusts before its transactions run.
	assertBlockRefusal(t, setup, kOther, mBurnedMax(1, addr(hFree), quote.Burn), ErrBurnAboveLimit, false)
	h := setup(t)
	bal := h.s.Account(addr(kOther)).Balance
	h.ok(kOther, mBurnedMax(1, addr(hFree), quote.NextBurn))
	if paid := bal - h.s.Account(addr(kOther)).Balance; paid != quote.NextBurn {
		t.Fatalf("paid %d, want %d", paid, quote.NextBurn)
	}
}

func TestBurnCostAndLockCostQueries(t *testing.T) {
	h := scenario(t)
	bc, ok := h.s.BurnCost(1)
	p := h.s.subnets[1].Params
	if !ok || bc.Netuid != 1 || bc.Block != h.s.Height() || bc.Burn != p.Burn || bc.RegsThisInterval != 3 || bc.BurnRegsThisInterval != 3 ||
		bc.TargetRegsPerInterval != p.TargetRegsPerInterval || bc.MinBurn != p.MinBurn || bc.MaxBurn != p.MaxBurn ||
		bc.NextAdjustmentBlock != h.s.subnets[1].LastAdjustmentBlock+p.AdjustmentInterval {
		t.Fatalf("burn cost %+v", bc)
	}
	if _, ok := h.s.BurnCost(9); ok {
		t.Fatal("burn cost of a missing subnet")
	}
	lc := h.s.LockCostInfo()
	g := h.s.Globals()
	if lc.Amount != h.s.NetworkLockCost() || lc.Block != h.s.Height() || lc.LastLock != g.NetworkMinLockCost || lc.MinLockCost != g.NetworkMinLockCost ||
		lc.DecayPerBlock != g.NetworkMinLockCost/g.NetworkLockReductionInterval || lc.Subnets != 1 || lc.SubnetLimit != g.SubnetLimit {
		t.Fatalf("lock cost %+v", lc)
	}
	// The lock cost of the next block is Amount − DecayPerBlock (until
	// the minimum).
	h.block()
	if got := h.s.NetworkLockCost(); got != lc.Amount-lc.DecayPerBlock {
		t.Fatalf("next block's lock cost %d, want %d", got, lc.Amount-lc.DecayPerBlock)
	}
}
