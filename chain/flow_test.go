package chain

import (
	"bytes"
	"testing"

	"github.com/cybertensor/cybertensor/wallet"
)

func TestTransferAndFaucet(t *testing.T) {
	h := scenario(t)
	supply := h.s.Supply().TotalIssuance
	before := h.s.Account(addr(kOther)).Balance
	h.ok(kOther, mTransfer(addr(kPoor), 500))
	if got := h.s.Account(addr(kPoor)).Balance; got != 500 {
		t.Fatalf("recipient balance %d", got)
	}
	if got := h.s.Account(addr(kOther)).Balance; got != before-500 {
		t.Fatalf("sender balance %d", got)
	}
	h.ok(kPoor, mFaucet())
	if got := h.s.Account(addr(kPoor)).Balance; got != 500+h.s.Globals().FaucetAmount {
		t.Fatalf("after faucet %d", got)
	}
	if h.s.Supply().TotalIssuance != supply+h.s.Globals().FaucetAmount {
		t.Fatal("faucet not counted in issuance")
	}
	h.advance(int(h.s.Globals().FaucetInterval))
	h.ok(kPoor, mFaucet())
}

func TestRegisterNetworkLockCost(t *testing.T) {
	h := newHarness(t, testGenesis(kOwner, kOther))
	min := h.s.Globals().NetworkMinLockCost
	if c := h.s.NetworkLockCost(); c != min {
		t.Fatalf("first lock cost %d, want min %d", c, min)
	}
	bal := h.s.Account(addr(kOwner)).Balance
	h.ok(kOwner, mRegisterNetwork("alpha"))
	sub, ok := h.s.Subnet(1)
	if !ok || sub.Owner != addr(kOwner) || sub.Locked != min || sub.Name != "alpha" {
		t.Fatalf("subnet %+v", sub)
	}
	if h.s.Account(addr(kOwner)).Balance != bal-min {
		t.Fatal("lock not debited")
	}
	if c := h.s.NetworkLockCost(); c != 2*min-min/h.s.Globals().NetworkLockReductionInterval*0 && c < min {
		t.Fatalf("second lock cost %d", c)
	}
	second := h.s.NetworkLockCost()
	if second != 2*min {
		t.Fatalf("lock cost right after a registration %d, want doubled %d", second, 2*min)
	}
	h.advance(10)
	if c := h.s.NetworkLockCost(); c >= second || c < min {
		t.Fatalf("lock cost does not decay: %d", c)
	}
	h.ok(kOther, mRegisterNetwork("beta"))
	if _, ok := h.s.Subnet(2); !ok {
		t.Fatal("netuid 2 not created")
	}
}

func TestRegistrationFillsThenPrunes(t *testing.T) {
	h := scenario(t)
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 3))
	h.ok(kOwner, mSudo(1, "immunity_period", 0))
	// Scores: uid 1 lowest once set; the newcomer replaces it.
	for i, score := range []uint16{500, 10, 900} {
		h.s.subnets[1].neurons[i].PruningScore = score
	}
	newcomer := testKey(20)
	res := h.ok(kOwner, mBurned(1, addr(newcomer)))
	if res.Events[0].Attrs["uid"] != "1" {
		t.Fatalf("replaced uid %s, want 1", res.Events[0].Attrs["uid"])
	}
	n, ok := h.s.NeuronByHotkey(1, addr(newcomer))
	if !ok || n.UID != 1 || n.RegisteredAt != h.s.Height() || len(n.Weights) != 0 {
		t.Fatalf("newcomer %+v", n)
	}
	if _, ok := h.s.NeuronByHotkey(1, addr(hMin1)); ok {
		t.Fatal("pruned hotkey still registered")
	}
	// Immunity protects recent registrations: with all immune, the lowest
	// immune score goes.
	h.ok(kOwner, mSudo(1, "immunity_period", 1000))
	another := testKey(21)
	h.s.subnets[1].neurons[2].PruningScore = 1
	res = h.ok(kOwner, mBurned(1, addr(another)))
	if res.Events[0].Attrs["uid"] != "2" {
		t.Fatalf("replaced uid %s, want 2", res.Events[0].Attrs["uid"])
	}
}

func TestUnstakeOnDeregistration(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mAddStake(addr(hMin1), 777))
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 3))
	h.ok(kOwner, mSudo(1, "immunity_period", 0))
	for i, score := range []uint16{500, 1, 900} {
		h.s.subnets[1].neurons[i].PruningScore = score
	}
	bal := h.s.Account(addr(kOwner)).Balance
	stake := h.s.Supply().TotalStake
	h.ok(kOwner, mBurned(1, addr(testKey(30))))
	burn := h.s.subnets[1].Params.Burn
	if got := h.s.Account(addr(kOwner)).Balance; got != bal-burn+777 {
		t.Fatalf("balance %d, want %d (stake returned, burn paid)", got, bal-burn+777)
	}
	if h.s.Supply().TotalStake != stake-777 {
		t.Fatal("total stake not reduced")
	}
}

func TestStakeAndDelegation(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mDelegate(addr(hVal), 6553))
	h.ok(kOther, mAddStake(addr(hVal), 3_000_000))
	if got := h.s.Stake(addr(kOther), addr(hVal)); got != 3_000_000 {
		t.Fatalf("stake %d", got)
	}
	info, _ := h.s.Hotkey(addr(hVal))
	if !info.Delegate || info.Take != 6553 || info.Total != 4_000_000 || len(info.Stakes) != 2 {
		t.Fatalf("hotkey %+v", info)
	}
	// Validator emission is split: take to the owner, the rest by stake.
	h.s.emitThroughHotkey(addr(hVal), 100, 1_000_000)
	take := mulDiv(1_000_000, 6553, 65535)
	rest := 1_000_000 - take
	otherShare := mulDiv(rest, 3_000_000, 4_000_000)
	if got := h.s.Stake(addr(kOther), addr(hVal)); got != 3_000_000+otherShare {
		t.Errorf("delegator stake %d, want %d", got, 3_000_000+otherShare)
	}
	if got := h.s.Stake(addr(kOwner), addr(hVal)); got != 1_000_000+take+(rest-otherShare)+100 {
		t.Errorf("owner stake %d", got)
	}
	h.ok(kOther, mRemoveStake(addr(hVal), 3_000_000))
	if got := h.s.Stake(addr(kOther), addr(hVal)); got != otherShare {
		t.Fatalf("after unstake %d", got)
	}
	if len(h.s.Delegates()) != 1 {
		t.Fatal("delegate list")
	}
}

func TestSetWeightsStoresUpscaledSortedRow(t *testing.T) {
	h := scenario(t)
	h.ok(hVal, mWeights(1, []uint32{2, 1}, []uint32{100, 50}, 0))
	n, _ := h.s.Neuron(1, 0)
	want := []Entry{{UID: 1, Value: 32767}, {UID: 2, Value: 65535}}
	if len(n.Weights) != 2 || n.Weights[0] != want[0] || n.Weights[1] != want[1] {
		t.Fatalf("weights %v, want %v", n.Weights, want)
	}
	if n.LastUpdate != h.s.Height() {
		t.Fatal("last_update not set")
	}
	// A self-weight needs no permit.
	h.ok(hMin1, mWeights(1, []uint32{1}, []uint32{1}, 0))
}

func TestCommitReveal(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1))
	h.ok(kOwner, mSudo(1, "commit_reveal_weights_interval", 10))
	uids, values, salt := []uint16{1, 2}, []uint16{3, 7}, []byte("pepper")
	hash := CommitHash(addr(hVal), 1, uids, values, salt, 0)
	for (h.s.Height()+1)%10 != 0 {
		h.block()
	}
	h.ok(hVal, mCommit(1, hash[:]))
	commitBlock := h.s.Height()
	first, last := RevealWindow(commitBlock, 10)
	u32 := []uint32{1, 2}
	v32 := []uint32{3, 7}
	// Too early.
	res := h.block(h.tx(hVal, mReveal(1, u32, v32, salt, 0)))
	if res.Txs[0].Code != ErrRevealTooEarly.Code {
		t.Fatalf("early reveal at %d (window %d..%d): %+v", h.s.Height(), first, last, res.Txs[0])
	}
	for h.s.Height()+1 < first {
		h.block()
	}
	// Wrong salt does not match.
	res = h.block(h.tx(hVal, mReveal(1, u32, v32, []byte("salt"), 0)))
	if res.Txs[0].Code != ErrRevealMismatch.Code {
		t.Fatalf("mismatched reveal: %+v", res.Txs[0])
	}
	h.ok(hVal, mReveal(1, u32, v32, salt, 0))
	n, _ := h.s.Neuron(1, 0)
	if len(n.Weights) != 2 || n.Commit != nil || h.s.Height() > last {
		t.Fatalf("after reveal: %+v at %d (window %d..%d)", n.Weights, h.s.Height(), first, last)
	}
	// A second commit left unrevealed past its window expires.
	hash2 := CommitHash(addr(hVal), 1, uids, values, salt, 1)
	h.ok(hVal, mCommit(1, hash2[:]))
	_, last2 := RevealWindow(h.s.Height(), 10)
	for h.s.Height() <= last2 {
		h.block()
	}
	res = h.block(h.tx(hVal, mReveal(1, u32, v32, salt, 1)))
	if res.Txs[0].Code != ErrRevealExpired.Code {
		t.Fatalf("late reveal: %+v", res.Txs[0])
	}
}

func TestServeAxon(t *testing.T) {
	h := scenario(t)
	pid := hMin1.PublicKey().PeerID().String()
	h.ok(hMin1, mServe(1, pid, "/ip4/127.0.0.1/tcp/4001", "/ip4/127.0.0.1/udp/4001/quic-v1"))
	m, _ := h.s.Metagraph(1, true)
	if a := m.Axons[1]; a == nil || a.PeerID != pid || len(a.Multiaddrs) != 2 {
		t.Fatalf("axon %+v", m.Axons[1])
	}
}

func TestPoWRegistration(t *testing.T) {
	h := scenario(t)
	h.ok(kOther, mRegisterNetwork("beta"))
	h.ok(kRoot, mSudo(1, "difficulty", 10_000))
	h.ok(kRoot, mSudo(2, "difficulty", 10_000))
	hot := testKey(40)
	height := h.s.Height()
	hash, ok := h.s.BlockHash(height)
	if !ok {
		t.Fatal("no recent block hash")
	}
	nonce, found := SolvePoW(hash, addr(hot), 10_000, 0, 1_000_000)
	if !found {
		t.Fatal("no solution")
	}
	// The same work registers once; used again (on another subnet, in the
	// same block) it is refused.
	res := h.block(h.tx(hot, mRegister(1, height, nonce, addr(kOther))), h.tx(hot, mRegister(2, height, nonce, addr(kOther))))
	if res.Txs[0].Code != 0 || res.Txs[1].Code != ErrWorkReused.Code {
		t.Fatalf("registration then reuse: %+v", res.Txs)
	}
	n, ok := h.s.NeuronByHotkey(1, addr(hot))
	if !ok || n.Coldkey != addr(kOther) {
		t.Fatalf("registered %+v", n)
	}
	// Work bound to a block that left the window is refused.
	h.advance(3)
	res = h.block(h.tx(hot, mRegister(2, height, nonce, addr(kOther))))
	if res.Txs[0].Code != ErrInvalidWorkBlock.Code {
		t.Fatalf("stale work: %+v", res.Txs[0])
	}
}

func TestFaucetOverflowRefused(t *testing.T) {
	gen := testGenesis()
	gen.Balances = []GenesisBalance{{Address: addr(kOther), Amount: 1<<62 - 10}}
	h := newHarness(t, gen)
	res := h.block(h.tx(kPoor, mFaucet()))
	if res.Txs[0].Code != ErrOverflow.Code {
		t.Fatalf("faucet past 2^62: %+v", res.Txs[0])
	}
}

func TestEpochPaysEmissionAtTempo(t *testing.T) {
	h := scenario(t)
	tempo := h.s.subnets[1].Params.Tempo
	issuance := h.s.Supply().TotalIssuance
	stake := h.s.hotkeyStake(addr(hVal))
	var epochs int
	for range 3 * (tempo + 1) {
		res := h.block()
		for _, e := range res.Events {
			if e.Type == "epoch" && e.Attrs["netuid"] == "1" {
				epochs++
			}
		}
	}
	if epochs != 3 {
		t.Fatalf("%d epochs in %d blocks of tempo %d", epochs, 3*(tempo+1), tempo)
	}
	// Only one subnet, so it gets all block emission; the stake epoch pays
	// it all to the only staked neuron.
	if got := h.s.subnets[1].EmissionPerBlock; got != h.s.Globals().BlockEmission {
		t.Fatalf("emission per block %d", got)
	}
	gained := h.s.hotkeyStake(addr(hVal)) - stake
	if gained == 0 || h.s.Supply().TotalIssuance != issuance+gained {
		t.Fatalf("gained %d, issuance %d -> %d", gained, issuance, h.s.Supply().TotalIssuance)
	}
	n, _ := h.s.Neuron(1, 0)
	if n.Dividends != 65535 || n.Emission == 0 {
		t.Fatalf("neuron after epoch %+v", n)
	}
}

func TestRootEpochSplitsEmission(t *testing.T) {
	h := scenario(t)
	h.ok(kOther, mRegisterNetwork("beta"))
	h.advance(2)
	// No root members: equal split.
	e1, e2 := h.s.subnets[1].EmissionPerBlock, h.s.subnets[2].EmissionPerBlock
	if e1 != e2 || e1 == 0 {
		t.Fatalf("equal split %d %d", e1, e2)
	}
	// A root member weighting subnet 2 only sends (nearly) everything there.
	h.ok(kOwner, mRootRegister(addr(hVal)))
	h.ok(hVal, mWeights(0, []uint32{2}, []uint32{1}, 0))
	h.advance(2)
	e1, e2 = h.s.subnets[1].EmissionPerBlock, h.s.subnets[2].EmissionPerBlock
	if e1 != 0 || e2 != h.s.Globals().BlockEmission {
		t.Fatalf("root-weighted split %d %d", e1, e2)
	}
	// Two members splitting their votes: shares follow stake and weights.
	h.ok(kOther, mRootRegister(addr(testKey(50))))
	h.ok(kOther, mAddStake(addr(testKey(50)), 1_000_000))
	h.ok(testKey(50), mWeights(0, []uint32{1, 2}, []uint32{1, 1}, 0))
	h.advance(2)
	e1, e2 = h.s.subnets[1].EmissionPerBlock, h.s.subnets[2].EmissionPerBlock
	if e1 == 0 || e2 <= e1 || e1+e2 > h.s.Globals().BlockEmission {
		t.Fatalf("two-member split %d %d", e1, e2)
	}
}

func TestRegistrationAdjustment(t *testing.T) {
	// Burn rises when registrations exceed the target.
	if got := adjustTowardTarget(1000, 4, 1, 0, 1, 1<<40); got != 2500 {
		t.Fatalf("burn after 4 regs for target 1: %d, want 2500", got)
	}
	// And falls when there are none, not below the minimum.
	if got := adjustTowardTarget(1000, 0, 2, 0, 1, 1<<40); got != 500 {
		t.Fatalf("burn after 0 regs: %d, want 500", got)
	}
	if got := adjustTowardTarget(1000, 0, 2, 0, 800, 1<<40); got != 800 {
		t.Fatalf("clamped to min: %d", got)
	}
	// alpha keeps part of the old value.
	if got := adjustTowardTarget(1000, 0, 2, 1<<63, 1, 1<<40); got != 750 {
		t.Fatalf("alpha 0.5: %d, want 750", got)
	}
	gen := testGenesis(kOwner)
	gen.SubnetDefaults.TargetRegsPerInterval = 1
	gen.SubnetDefaults.AdjustmentInterval = 10
	gen.SubnetDefaults.AdjustmentAlpha = 0
	h := newHarness(t, gen)
	h.ok(kOwner, mRegisterNetwork("alpha"))
	h.ok(kOwner, mBurned(1, addr(hMin1)))
	h.ok(kOwner, mBurned(1, addr(hMin2)))
	burn := h.s.subnets[1].Params.Burn
	for h.s.subnets[1].LastAdjustmentBlock == 1 {
		h.block()
	}
	// 2 burned registrations for a target of 1: burn × (2+1)/(2·1).
	if got := h.s.subnets[1].Params.Burn; got != burn*3/2 {
		t.Fatalf("burn %d, want %d", got, burn*3/2)
	}
	if h.s.subnets[1].RegsThisInterval != 0 {
		t.Fatal("interval counters not reset")
	}
}

func TestMetagraphAndQueries(t *testing.T) {
	h := scenario(t)
	m, ok := h.s.Metagraph(1, false)
	if !ok || m.N != 3 || m.Hotkeys[0] != addr(hVal) || m.Coldkeys[2] != addr(kOwner) || m.Stake[0] != 1_000_000 || len(m.Weights) != 3 {
		t.Fatalf("metagraph %+v", m)
	}
	lite, _ := h.s.Metagraph(1, true)
	if lite.Weights != nil || lite.Bonds != nil {
		t.Fatal("lite metagraph has rows")
	}
	if _, ok := h.s.Metagraph(9, false); ok {
		t.Fatal("metagraph of a missing subnet")
	}
	// Results are copies.
	n, _ := h.s.Neuron(1, 0)
	n.Weights = append(n.Weights, Entry{UID: 1, Value: 1})
	again, _ := h.s.Neuron(1, 0)
	if len(again.Weights) != 0 {
		t.Fatal("query result aliases the state")
	}
	if subs := h.s.Subnets(); len(subs) != 2 || subs[0].Netuid != 0 || subs[1].N != 3 {
		t.Fatalf("subnets %+v", subs)
	}
	if !bytes.Equal(h.s.AppHash(), h.s.AppHash()) || len(h.s.AppHash()) != 32 {
		t.Fatal("app hash")
	}
	_ = wallet.DefaultAddressPrefix
}

// With the real Yuma epoch, miners weighted by the validators earn
// incentive, validators earn dividends, and an unweighted miner earns
// nothing.
func TestYumaEpochOnChain(t *testing.T) {
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.SubnetDefaults.Tempo = 10
	s, err := NewState(gen, YumaEpoch)
	if err != nil {
		t.Fatal(err)
	}
	h := &harness{t: t, s: s, seq: map[Address]uint64{}}
	h.ok(kOwner, mRegisterNetwork("alpha"))
	vals := []*wallet.PrivateKey{testKey(60), testKey(61)}
	miners := []*wallet.PrivateKey{testKey(62), testKey(63), testKey(64)}
	for _, k := range append(append([]*wallet.PrivateKey{}, vals...), miners...) {
		h.ok(kOwner, mBurned(1, addr(k)))
	}
	h.ok(kOwner, mAddStake(addr(vals[0]), 6_000_000))
	h.ok(kOwner, mAddStake(addr(vals[1]), 4_000_000))
	// Permits come from the first epoch (top-k by stake).
	for h.s.subnets[1].neurons[0].ValidatorPermit == false {
		h.block()
	}
	for round := range 4 {
		for _, v := range vals {
			h.ok(v, mWeights(1, []uint32{2, 3}, []uint32{60000, 30000}, uint64(round)*0))
		}
		last := h.s.subnets[1].LastEpochBlock
		for h.s.subnets[1].LastEpochBlock == last {
			h.block()
		}
	}
	m, _ := h.s.Metagraph(1, true)
	if m.Incentive[2] == 0 || m.Incentive[3] == 0 || m.Incentive[2] <= m.Incentive[3] {
		t.Fatalf("miner incentive %v", m.Incentive)
	}
	if m.Incentive[4] != 0 || m.Emission[4] != 0 {
		t.Fatalf("unweighted miner earned: incentive %d emission %d", m.Incentive[4], m.Emission[4])
	}
	if m.Dividends[0] == 0 || m.Dividends[1] == 0 || m.Dividends[0] <= m.Dividends[1] {
		t.Fatalf("validator dividends %v", m.Dividends)
	}
	if m.Stake[2] == 0 {
		t.Fatal("miner emission not paid into stake")
	}
}
