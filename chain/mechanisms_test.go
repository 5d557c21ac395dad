package chain

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"strings"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func mMechanisms(netuid uint32, shares ...uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: netuid, Shares: shares}}}
}

func mMechWeights(netuid, mech uint32, uids, values []uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: netuid, Uids: uids, Values: values, Mechanism: mech}}}
}

func mSubnetSpec(netuid uint32, hash []byte) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: netuid, SpecHash: hash}}}
}

// toEpochBlock applies empty blocks up to and including the next block
// whose block step runs netuid's epoch, and returns its height.
func (h *harness) toEpochBlock(netuid uint16) uint64 {
	h.t.Helper()
	at := nextEpochBlock(netuid, h.s.subnets[netuid].Params.Tempo, h.s.Height())
	for h.s.Height() < at {
		h.block()
	}
	return at
}

// keysWithPrefix counts the state's records under prefix.
func keysWithPrefix(s *State, prefix string) int {
	n := 0
	for _, r := range s.allRecords() {
		if strings.HasPrefix(r.key, prefix) {
			n++
		}
	}
	return n
}

func TestSplitEmission(t *testing.T) {
	for _, tc := range []struct {
		name   string
		total  uint64
		shares []uint32
		want   []uint64
	}{
		{"no shares", 100, nil, []uint64{100}},
		{"one share", 100, []uint32{7}, []uint64{100}},
		{"even", 100, []uint32{1, 1}, []uint64{50, 50}},
		{"remainder to mechanism 0", 10, []uint32{1, 1, 1}, []uint64{4, 3, 3}},
		{"70/30", 1_000_000_007, []uint32{7, 3}, []uint64{700_000_005, 300_000_002}},
		{"zero total", 0, []uint32{1, 2, 3}, []uint64{0, 0, 0}},
		{"large shares", 1 << 62, []uint32{1<<32 - 1, 1}, []uint64{1<<62 - 1<<30, 1 << 30}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := SplitEmission(tc.total, tc.shares)
			if len(got) != len(tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
			for i := range got {
				if got[i] != tc.want[i] {
					t.Fatalf("got %v, want %v", got, tc.want)
				}
			}
		})
	}
}

// Property: the parts sum to the total exactly; each mechanism but 0
// gets floor(total·s_i/S); mechanism 0 gets its floor plus a remainder
// below the number of mechanisms.
func TestSplitEmissionConservesProperty(t *testing.T) {
	r := rand.New(rand.NewPCG(21, 5))
	for range 20_000 {
		shares := make([]uint32, 1+r.IntN(MaxMechanisms))
		var sum uint64
		for i := range shares {
			shares[i] = 1 + uint32(r.Uint64N(1<<32-1))
			if r.IntN(3) == 0 {
				shares[i] = 1 + uint32(r.IntN(10))
			}
			sum += uint64(shares[i])
		}
		total := r.Uint64N(1 << 62)
		got := SplitEmission(total, shares)
		var acc uint64
		for i, v := range got {
			acc += v
			floor := mulDiv(total, uint64(shares[i]), sum)
			if len(shares) == 1 {
				floor = total
			}
			if i > 0 && v != floor {
				t.Fatalf("mechanism %d: %d, want %d (total %d, shares %v)", i, v, floor, total, shares)
			}
			if i == 0 && (v < floor || v-floor >= uint64(max(len(shares), 1))) {
				t.Fatalf("mechanism 0: %d, floor %d (shares %v)", v, floor, shares)
			}
		}
		if acc != total {
			t.Fatalf("parts sum to %d, total %d (shares %v)", acc, total, shares)
		}
	}
}

// Refused messages change nothing: CheckTx refuses them without touching
// the state, and in a block they leave the app hash as a refused transfer
// does.
func TestMechanismMessagesRefused(t *testing.T) {
	commitReveal := func(h *harness) { h.ok(kRoot, mSudo(1, "commit_reveal_weights_enabled", 1)) }
	twoMechanisms := func(h *harness) {
		h.ok(kOwner, mMechanisms(1, 1, 1))
		h.toEpochBlock(1)
	}
	seventeen := make([]uint32, MaxMechanisms+1)
	for i := range seventeen {
		seventeen[i] = 1
	}
	hash := bytes.Repeat([]byte{7}, 32)
	for _, tc := range []struct {
		name  string
		setup func(*harness)
		key   *wallet.PrivateKey
		msg   *chainpb.Msg
		want  *TxError
	}{
		{"no shares", nil, kOwner, mMechanisms(1), ErrInvalidMechanismShares},
		{"17 shares", nil, kOwner, mMechanisms(1, seventeen...), ErrInvalidMechanismShares},
		{"a zero share", nil, kOwner, mMechanisms(1, 3, 0), ErrInvalidMechanismShares},
		{"not the owner", nil, kOther, mMechanisms(1, 1, 1), ErrNotSubnetOwner},
		{"the root network", nil, kRoot, mMechanisms(0, 1, 1), ErrOnRootNetwork},
		{"no such subnet", nil, kOwner, mMechanisms(9, 1, 1), ErrNetworkDoesNotExist},
		{"weights on mechanism 1 of one", nil, hVal, mMechWeights(1, 1, []uint32{1}, []uint32{1}), ErrMechanismDoesNotExist},
		{"weights on mechanism 2 of two", twoMechanisms, hVal, mMechWeights(1, 2, []uint32{1}, []uint32{1}), ErrMechanismDoesNotExist},
		{"weights on a huge mechanism", twoMechanisms, hVal, mMechWeights(1, 1<<31, []uint32{1}, []uint32{1}), ErrMechanismDoesNotExist},
		{"weights on a pending mechanism", func(h *harness) { h.ok(kOwner, mMechanisms(1, 1, 1)) }, hVal, mMechWeights(1, 1, []uint32{1}, []uint32{1}), ErrMechanismDoesNotExist},
		{"commit on mechanism 1 of one", commitReveal, hVal, &chainpb.Msg{Sum: &chainpb.Msg_CommitWeights{CommitWeights: &chainpb.CommitWeights{Netuid: 1, Hash: hash, Mechanism: 1}}}, ErrMechanismDoesNotExist},
		{"reveal on mechanism 1 of one", commitReveal, hVal, &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{Netuid: 1, Uids: []uint32{1}, Values: []uint32{1}, Mechanism: 1}}}, ErrMechanismDoesNotExist},
		{"reveal on mechanism 1 without a commit", func(h *harness) { commitReveal(h); twoMechanisms(h) }, hVal, &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{Netuid: 1, Uids: []uint32{1}, Values: []uint32{1}, Mechanism: 1}}}, ErrNoWeightsCommit},
		{"spec hash of 31 bytes", nil, kOwner, mSubnetSpec(1, hash[:31]), ErrInvalidSpecHash},
		{"spec hash of 0 bytes", nil, kOwner, mSubnetSpec(1, nil), ErrInvalidSpecHash},
		{"spec by another", nil, kOther, mSubnetSpec(1, hash), ErrNotSubnetOwner},
		{"spec by the chain root", nil, kRoot, mSubnetSpec(1, hash), ErrNotSubnetOwner},
		{"spec of the root network", nil, kRoot, mSubnetSpec(0, hash), ErrOnRootNetwork},
		{"spec of no subnet", nil, kOwner, mSubnetSpec(70000, hash), ErrNetworkDoesNotExist},
		{"spec with a zero mechanism share", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: hash, MechanismShares: []uint32{1, 0}}}}, ErrInvalidMechanismShares},
		{"spec with 17 mechanism shares", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: hash, MechanismShares: seventeen}}}, ErrInvalidMechanismShares},
	} {
		t.Run(tc.name, func(t *testing.T) {
			refusedKeepsAppHash(t, tc.setup, tc.key, tc.msg, tc.want)
		})
	}
}

// SetMechanisms is pending until the subnet's next epoch block, whose
// epoch still runs on the old shares; from that block on the new count
// takes weights. A second one before the boundary replaces the first.
func TestMechanismsTakeEffectAtTheEpochBlock(t *testing.T) {
	h := scenario(t)
	res := h.ok(kOwner, mMechanisms(1, 5, 5, 5))
	at := nextEpochBlock(1, h.s.subnets[1].Params.Tempo, h.s.Height())
	if res.Events[0].Attrs["effective_block"] != u64s(at) {
		t.Fatalf("event %+v, want effective block %d", res.Events[0], at)
	}
	h.ok(kOwner, mMechanisms(1, 7, 3)) // replaces the pending one
	info, _ := h.s.Mechanisms(1)
	if info.Count() != 1 || len(info.PendingShares) != 2 || info.PendingShares[0] != 7 || info.EffectiveBlock != at {
		t.Fatalf("before the boundary: %+v", info)
	}
	for h.s.Height() < at-2 {
		h.block()
	}
	// In the block before the boundary: still one mechanism.
	if r := h.block(h.tx(hVal, mMechWeights(1, 1, []uint32{1}, []uint32{1}))); r.Txs[0].Code != ErrMechanismDoesNotExist.Code {
		t.Fatalf("weights on mechanism 1 a block before the boundary: %+v", r.Txs[0])
	}
	if info, _ := h.s.Mechanisms(1); info.Count() != 1 {
		t.Fatalf("a block before the boundary: %+v", info)
	}
	// In the boundary block: its epoch runs on one mechanism, then the
	// shares apply, before the block's transactions: mechanism 1 takes
	// weights there, 2 does not.
	r := h.block(h.tx(hVal, mMechWeights(1, 1, []uint32{2}, []uint32{1})), h.tx(hVal, mMechWeights(1, 2, []uint32{2}, []uint32{1})))
	if h.s.Height() != at {
		t.Fatalf("height %d, boundary %d", h.s.Height(), at)
	}
	var epoch, applied bool
	for _, e := range r.Events {
		if e.Attrs["netuid"] != "1" {
			continue
		}
		if e.Type == "epoch" {
			epoch = e.Attrs["mechanisms"] == "" && !applied
		}
		applied = applied || e.Type == "mechanisms_applied"
	}
	if !epoch || !applied {
		t.Fatalf("boundary events %+v", r.Events)
	}
	if info, _ := h.s.Mechanisms(1); info.Count() != 2 || info.Shares[0] != 7 || info.Shares[1] != 3 || info.PendingShares != nil {
		t.Fatalf("at the boundary: %+v", info)
	}
	if sub, _ := h.s.Subnet(1); sub.Mechanisms != 2 {
		t.Fatalf("subnet info says %d mechanisms", sub.Mechanisms)
	}
	if r.Txs[0].Code != 0 || r.Txs[1].Code != ErrMechanismDoesNotExist.Code {
		t.Fatalf("in the boundary block: %+v", r.Txs)
	}
	if r.Txs[0].Events[0].Attrs["mechanism"] != "1" {
		t.Fatalf("weights event %+v", r.Txs[0].Events[0])
	}
	// The block after: the next epoch is a tempo away.
	if info, _ := h.s.Mechanisms(1); info.EffectiveBlock != 0 {
		t.Fatalf("after: %+v", info)
	}
	n, _ := h.s.Neuron(1, 0)
	m1, ok := n.Mechanism(1)
	if !ok || len(m1.Weights) != 1 || m1.Weights[0].UID != 2 || m1.LastUpdate != h.s.Height() || len(n.Weights) != 0 {
		t.Fatalf("neuron %+v, mechanism 1 %+v", n, m1)
	}
}

// Setting one mechanism returns a subnet to exactly the state of one that
// never set any: after the boundary its app hash equals that of a twin
// whose owner's transaction was refused instead.
func TestOneMechanismIsBitForBitToday(t *testing.T) {
	a, b := scenario(t), scenario(t)
	a.ok(kOwner, mMechanisms(1, 5))
	rb := b.block(b.tx(kOwner, mTransfer(addr(kPoor), 0)))
	if rb.Txs[0].Code == 0 {
		t.Fatal("twin's transfer of 0 accepted")
	}
	if bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("a pending change is not in the app hash")
	}
	a.toEpochBlock(1)
	b.toEpochBlock(1)
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) || keysWithPrefix(a.s, "e/") != 0 {
		t.Fatal("one mechanism differs from none after the boundary")
	}
	for range 30 {
		a.block()
		b.block()
	}
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("diverged later")
	}
}

// mechanismScenario is the standard scenario on the Yuma epoch with two
// mechanisms of shares 3 and 1, after the boundary.
func mechanismScenario(t *testing.T) *harness {
	t.Helper()
	h := scenario(t)
	h.s.epoch = YumaEpoch
	h.ok(kOwner, mMechanisms(1, 3, 1))
	h.toEpochBlock(1)
	return h
}

// Each mechanism has its own weights, bonds, consensus and incentive: the
// validator weights miner 1 on mechanism 0 and miner 2 on mechanism 1;
// each miner earns its mechanism's share, and the neuron's incentive is
// the share-weighted mean.
func TestMechanismEpochsPayByShare(t *testing.T) {
	h := mechanismScenario(t)
	h.ok(hVal, mMechWeights(1, 0, []uint32{1}, []uint32{1}))
	h.ok(hVal, mMechWeights(1, 1, []uint32{2}, []uint32{1}))
	stake := func(k *wallet.PrivateKey) uint64 { return h.s.hotkeyStake(addr(k)) }
	issuance, before := h.s.Supply().TotalIssuance, h.s.Supply().TotalStake
	s1, s2 := stake(hMin1), stake(hMin2)
	pending := h.s.subnets[1].PendingEmission
	at := nextEpochBlock(1, h.s.subnets[1].Params.Tempo, h.s.Height())
	pending += (at - h.s.Height()) * h.s.subnets[1].EmissionPerBlock
	var paid string
	for h.s.Height() < at {
		for _, e := range h.block().Events {
			if e.Type == "epoch" && e.Attrs["netuid"] == "1" {
				paid = e.Attrs["emission"]
				if e.Attrs["mechanisms"] != "2" {
					t.Fatalf("epoch event %+v", e)
				}
			}
		}
	}
	info, _ := h.s.Mechanisms(1)
	if info.Incentive[0][1] != 65535 || info.Incentive[0][2] != 0 || info.Incentive[1][2] != 65535 || info.Incentive[1][1] != 0 {
		t.Fatalf("per-mechanism incentive %v", info.Incentive)
	}
	m, _ := h.s.Metagraph(1, true)
	if m.Incentive[1] != 65535*3/4 || m.Incentive[2] != 65535/4 {
		t.Fatalf("neuron incentive %v, want the 3:1 mean", m.Incentive)
	}
	if len(m.MechanismIncentive) != 2 || m.MechanismIncentive[1][2] != 65535 {
		t.Fatalf("metagraph mechanism incentive %v", m.MechanismIncentive)
	}
	g1, g2 := stake(hMin1)-s1, stake(hMin2)-s2
	// Half of each mechanism goes to miners: 3/4 and 1/4 of half of the
	// pending emission, to the unit of rounding.
	if g1 == 0 || g2 == 0 || g1 < 3*g2-3 || g1 > 3*g2+3 {
		t.Fatalf("miner gains %d and %d, want 3:1", g1, g2)
	}
	gained := h.s.Supply().TotalStake - before
	if h.s.Supply().TotalIssuance-issuance != gained || u64s(gained) != paid || gained > pending {
		t.Fatalf("issuance +%d, stake +%d, event %s, pending %d", h.s.Supply().TotalIssuance-issuance, gained, paid, pending)
	}
	n, _ := h.s.Neuron(1, 0)
	if mb, _ := n.Mechanism(1); len(mb.Bonds) == 0 || mb.Bonds[0].UID != 2 {
		t.Fatalf("mechanism 1 bonds %+v", mb)
	}
	if len(n.Bonds) == 0 || n.Bonds[0].UID != 1 {
		t.Fatalf("mechanism 0 bonds %+v", n.Bonds)
	}
}

// Emission conservation over random shares, stakes and weights: every
// epoch pays at most the subnet's pending emission, issuance grows by
// exactly what stake gained, and the chain's token identity holds.
func TestMechanismEmissionConservationProperty(t *testing.T) {
	seeds := 6
	if testing.Short() {
		seeds = 2
	}
	for seed := range seeds {
		r := rand.New(rand.NewPCG(uint64(seed), 21))
		h := scenario(t)
		if seed%2 == 1 {
			h.s.epoch = YumaEpoch
		}
		shares := make([]uint32, 2+r.IntN(MaxMechanisms-1))
		for i := range shares {
			shares[i] = 1 + uint32(r.IntN(1000))
		}
		h.ok(kOwner, mMechanisms(1, shares...))
		h.toEpochBlock(1)
		for range 3 {
			for m := range shares {
				if r.IntN(2) == 0 {
					h.ok(hVal, mMechWeights(1, uint32(m), []uint32{1, 2}, []uint32{uint32(r.IntN(65536)), uint32(r.IntN(65536))}))
				}
			}
			issuance, stake := h.s.Supply().TotalIssuance, h.s.Supply().TotalStake
			at := nextEpochBlock(1, h.s.subnets[1].Params.Tempo, h.s.Height())
			pending := h.s.subnets[1].PendingEmission + (at-h.s.Height())*h.s.subnets[1].EmissionPerBlock
			h.toEpochBlock(1)
			gainedIssuance, gainedStake := h.s.Supply().TotalIssuance-issuance, h.s.Supply().TotalStake-stake
			if gainedIssuance != gainedStake || gainedStake > pending {
				t.Fatalf("seed %d: issuance +%d, stake +%d, pending %d", seed, gainedIssuance, gainedStake, pending)
			}
			var balances uint64
			for _, acc := range h.s.accounts {
				balances += acc.Balance
			}
			if balances+h.s.g.TotalStake+lockedTotal(h.s) != h.s.g.TotalIssuance {
				t.Fatalf("seed %d: token identity broken", seed)
			}
		}
	}
}

// Reducing the count deletes the dropped mechanisms' rows at the
// boundary, and only theirs; going back to one removes every mechanism
// record.
func TestReducingMechanismsDropsTheirRows(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mMechanisms(1, 1, 1, 1))
	h.toEpochBlock(1)
	h.ok(hVal, mMechWeights(1, 1, []uint32{1}, []uint32{1}))
	h.ok(hVal, mMechWeights(1, 2, []uint32{2}, []uint32{1}))
	if n := keysWithPrefix(h.s, "w/"); n != 2 {
		t.Fatalf("%d mechanism rows, want 2", n)
	}
	h.ok(kOwner, mMechanisms(1, 1, 1))
	at := nextEpochBlock(1, h.s.subnets[1].Params.Tempo, h.s.Height())
	for h.s.Height() < at-1 {
		h.block()
	}
	if n := keysWithPrefix(h.s, "w/"); n != 2 {
		t.Fatalf("a block before the boundary: %d rows", n)
	}
	h.block()
	if n := keysWithPrefix(h.s, "w/"); n != 1 {
		t.Fatalf("at the boundary: %d rows, want mechanism 1's", n)
	}
	if _, ok := h.s.MechanismWeights(1, 2, false); ok {
		t.Fatal("mechanism 2 still answers")
	}
	if w, ok := h.s.MechanismWeights(1, 1, false); !ok || len(w[0]) != 1 {
		t.Fatalf("mechanism 1 weights %v %v", w, ok)
	}
	info, _ := h.s.Mechanisms(1)
	if len(info.Incentive) != 2 {
		t.Fatalf("incentive of %d mechanisms", len(info.Incentive))
	}
	h.ok(kOwner, mMechanisms(1, 9))
	h.toEpochBlock(1)
	if keysWithPrefix(h.s, "w/")+keysWithPrefix(h.s, "e/") != 0 {
		t.Fatal("mechanism records left with one mechanism")
	}
	if info, _ := h.s.Mechanisms(1); info.Count() != 1 || info.Shares[0] != 1 {
		t.Fatalf("after going back to one: %+v", info)
	}
}

// A commit on mechanism 1 is revealed with CommitHashMechanism; the hash
// of mechanism 0 does not reveal it.
func TestCommitRevealPerMechanism(t *testing.T) {
	h := scenario(t)
	h.ok(kRoot, mSudo(1, "commit_reveal_weights_enabled", 1))
	h.ok(kRoot, mSudo(1, "commit_reveal_weights_interval", 5))
	h.ok(kOwner, mMechanisms(1, 1, 1))
	h.toEpochBlock(1)
	uids, values, salt := []uint16{2}, []uint16{100}, []byte("salt")
	hash := CommitHashMechanism(addr(hVal), 1, 1, uids, values, salt, 0)
	if hash == CommitHash(addr(hVal), 1, uids, values, salt, 0) || CommitHashMechanism(addr(hVal), 1, 0, uids, values, salt, 0) != CommitHash(addr(hVal), 1, uids, values, salt, 0) {
		t.Fatal("mechanism commit hashes")
	}
	h.ok(hVal, &chainpb.Msg{Sum: &chainpb.Msg_CommitWeights{CommitWeights: &chainpb.CommitWeights{Netuid: 1, Hash: hash[:], Mechanism: 1}}})
	n, _ := h.s.Neuron(1, 0)
	if m1, _ := n.Mechanism(1); m1.Commit == nil || n.Commit != nil {
		t.Fatalf("commit stored on %+v / %+v", m1.Commit, n.Commit)
	}
	first, _ := RevealWindow(h.s.Height(), 5)
	for h.s.Height()+1 < first {
		h.block()
	}
	reveal := func(mech uint32) *chainpb.Msg {
		return &chainpb.Msg{Sum: &chainpb.Msg_RevealWeights{RevealWeights: &chainpb.RevealWeights{Netuid: 1, Uids: []uint32{2}, Values: []uint32{100}, Salt: salt, Mechanism: mech}}}
	}
	if r := h.block(h.tx(hVal, reveal(0))); r.Txs[0].Code != ErrNoWeightsCommit.Code {
		t.Fatalf("reveal on mechanism 0: %+v", r.Txs[0])
	}
	h.ok(hVal, reveal(1))
	n, _ = h.s.Neuron(1, 0)
	if m1, _ := n.Mechanism(1); m1.Commit != nil || len(m1.Weights) != 1 || len(n.Weights) != 0 {
		t.Fatalf("after reveal: mechanism 1 %+v, neuron weights %v", m1, n.Weights)
	}
}

// A new neuron taking a uid does not inherit the old one's mechanism rows
// or incentive.
func TestReplacedUIDLosesMechanismRows(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mMechanisms(1, 1, 1))
	h.toEpochBlock(1)
	h.ok(hMin2, mMechWeights(1, 1, []uint32{2}, []uint32{1})) // a self weight
	if keysWithPrefix(h.s, "w/") != 1 {
		t.Fatal("no row")
	}
	h.ok(kRoot, mSudo(1, "max_allowed_uids", 3))
	h.ok(kRoot, mSudo(1, "immunity_period", 0))
	for uid, n := range h.s.subnets[1].neurons {
		n.PruningScore = 100
		if uid == 2 {
			n.PruningScore = 0
		}
		h.s.markNeuron(1, uint16(uid))
	}
	h.ok(kOther, mBurned(1, addr(hFree)))
	if uid := h.s.subnets[1].uids[addr(hFree)]; uid != 2 || keysWithPrefix(h.s, "w/") != 0 {
		t.Fatalf("uid %d, %d rows", uid, keysWithPrefix(h.s, "w/"))
	}
}

// SetSubnetSpec: pending until the next epoch block, then the spec hash;
// a second one before replaces the first; SubnetInfo shows it all.
func TestSubnetSpecTakesEffectAtTheBoundary(t *testing.T) {
	h := scenario(t)
	old := h.s.subnets[1].SpecHash
	first, second := bytes.Repeat([]byte{1}, 32), bytes.Repeat([]byte{2}, 32)
	h.ok(kOwner, mSubnetSpec(1, first))
	at := nextEpochBlock(1, h.s.subnets[1].Params.Tempo, h.s.Height())
	h.ok(kOwner, mSubnetSpec(1, second))
	info, _ := h.s.Subnet(1)
	if !bytes.Equal(info.PendingSpecHash, second) || info.SpecEffectiveBlock != at || !bytes.Equal(info.SpecHash, old) {
		t.Fatalf("pending: %+v", info)
	}
	for h.s.Height() < at-1 {
		h.block()
	}
	if info, _ := h.s.Subnet(1); !bytes.Equal(info.SpecHash, old) || info.PendingSpecHash == nil {
		t.Fatalf("a block before: %+v", info)
	}
	var applied bool
	for _, e := range h.block().Events {
		applied = applied || (e.Type == "subnet_spec_applied" && e.Attrs["netuid"] == "1")
	}
	info, _ = h.s.Subnet(1)
	if !applied || !bytes.Equal(info.SpecHash, second) || info.PendingSpecHash != nil || info.SpecEffectiveBlock != at {
		t.Fatalf("at the boundary (applied %v): %+v", applied, info)
	}
	h.block()
	if info, _ := h.s.Subnet(1); !bytes.Equal(info.SpecHash, second) || info.SpecEffectiveBlock != at {
		t.Fatalf("a block after: %+v", info)
	}
	// A subnet that never changed its spec shows its registration block.
	h.ok(kOther, mRegisterNetwork("beta"))
	if info, _ := h.s.Subnet(2); info.SpecEffectiveBlock != h.s.Height() || info.PendingSpecHash != nil || keysWithPrefix(h.s, "u/") != 1 {
		t.Fatalf("untouched subnet: %+v", info)
	}
}

// Mechanisms, rows and a pending spec survive a restart (the reopened
// store hashes the same), and a metagraph read at a past height has that
// height's per-mechanism incentive.
func TestMechanismsPersistAndHistory(t *testing.T) {
	sh := openStoreHarness(t, testGenesis(kRoot, kOwner, kOther))
	sh.send(kOwner, mRegisterNetwork("alpha"))
	for _, hk := range []*wallet.PrivateKey{hVal, hMin1, hMin2} {
		sh.send(kOwner, mBurned(1, addr(hk)))
	}
	sh.send(kOwner, mAddStake(addr(hVal), 1_000_000))
	sh.send(kOwner, mMechanisms(1, 1, 1))
	sh.send(kOwner, mSubnetSpec(1, bytes.Repeat([]byte{3}, 32)))
	for sh.s.mech.count(1) != 2 {
		sh.block()
	}
	sh.send(hVal, mMechWeights(1, 1, []uint32{2}, []uint32{1}))
	sh.send(kOwner, mSubnetSpec(1, bytes.Repeat([]byte{4}, 32)))
	sh.reopen()
	if keysWithPrefix(sh.s, "w/") != 1 || keysWithPrefix(sh.s, "e/") != 1 || keysWithPrefix(sh.s, "u/") != 1 {
		t.Fatal("records lost on reopen")
	}
	epoch := sh.s.subnets[1].LastEpochBlock
	for sh.s.subnets[1].LastEpochBlock == epoch {
		sh.block()
	}
	past := sh.s.Height()
	then, _ := sh.s.Mechanisms(1)
	sh.send(hVal, mMechWeights(1, 1, []uint32{1}, []uint32{1}))
	for sh.s.subnets[1].LastEpochBlock <= past {
		sh.block()
	}
	m, ok, err := sh.db.MetagraphAt(1, past, LiteMetagraphFields)
	if err != nil || !ok {
		t.Fatal(ok, err)
	}
	if len(m.MechanismIncentive) != 2 || m.MechanismIncentive[1][2] != then.Incentive[1][2] {
		t.Fatalf("past metagraph %v, then %v", m.MechanismIncentive, then.Incentive)
	}
}

func TestMetagraphMechanismIncentiveEncoding(t *testing.T) {
	h := mechanismScenario(t)
	h.ok(hVal, mMechWeights(1, 1, []uint32{2}, []uint32{1}))
	h.toEpochBlock(1)
	for _, fields := range []MetagraphFields{AllMetagraphFields, LiteMetagraphFields, 1 << 8, 1 << 3} {
		m, _ := h.s.MetagraphColumns(1, fields)
		b, err := EncodeMetagraph(m)
		if err != nil {
			t.Fatal(err)
		}
		got, err := DecodeMetagraph(b)
		if err != nil {
			t.Fatal(err)
		}
		if fields.Has(1<<8) != (len(got.MechanismIncentive) == 2) || (got.MechanismIncentive != nil && got.MechanismIncentive[1][2] != 65535) {
			t.Fatalf("fields %s: decoded %v", fields, got.MechanismIncentive)
		}
		j, err := m.ColumnsJSON()
		if err != nil {
			t.Fatal(err)
		}
		if fields.Has(1<<8) != strings.Contains(string(j), `"mechanism_incentive":[[`) {
			t.Fatalf("fields %s: JSON %s", fields, j)
		}
	}
	// A trailing part without the incentive column, or with one mechanism,
	// is malformed.
	m, _ := h.s.MetagraphColumns(1, 1<<3)
	b, _ := EncodeMetagraph(m)
	if _, err := DecodeMetagraph(append(b, 2, 0, 0)); err == nil {
		t.Fatal("mechanism incentive without the incentive column decoded")
	}
	m, _ = h.s.MetagraphColumns(1, 1<<8)
	m.MechanismIncentive = m.MechanismIncentive[:1]
	if _, err := EncodeMetagraph(m); err == nil {
		t.Fatal("one mechanism's incentive encoded")
	}
}

// FuzzLoadMechanismRecords feeds arbitrary bytes to the decoders of the
// mechanism, mechanism row and spec records a restart runs: never a
// panic, and an accepted record encodes again to one that loads.
func FuzzLoadMechanismRecords(f *testing.F) {
	prefixes := []struct {
		prefix string
		keyLen int
	}{{"e/", 4}, {"w/", 7}, {"u/", 4}}
	f.Add(uint8(0), []byte{0, 1}, (&mechanismsRecord{shares: []uint32{3, 1}, incentive: [][]uint16{{1, 2}, {3, 4}}}).encode())
	f.Add(uint8(0), []byte{0, 1}, (&mechanismsRecord{pending: []uint32{1}}).encode())
	f.Add(uint8(1), []byte{0, 1, 2, 0, 3}, (&mechanismRow{weights: []Entry{{UID: 1, Value: 9}}, lastUpdate: 4, commit: &WeightCommit{Block: 3}}).encode())
	f.Add(uint8(2), []byte{0, 1}, (&specRecord{pending: bytes.Repeat([]byte{1}, 32), effectiveAt: 8}).encode())
	f.Fuzz(func(t *testing.T, kind uint8, tail, value []byte) {
		p := prefixes[int(kind)%len(prefixes)]
		key := p.prefix + string(tail)
		if len(key) != p.keyLen {
			return
		}
		s := newEmptyState(nil)
		if err := s.loadRecord(key, value, map[uint16][]*Neuron{}); err != nil {
			return
		}
		for _, r := range s.allRecords() {
			if r.key == keyGlobals() {
				continue
			}
			again := newEmptyState(nil)
			if err := again.loadRecord(r.key, r.value, map[uint16][]*Neuron{}); err != nil {
				t.Fatalf("record %x loaded, its encoding %x does not: %v", key, r.value, err)
			}
		}
	})
}

func TestMechanismErrorsAreNamed(t *testing.T) {
	for _, e := range []*TxError{ErrInvalidMechanismShares, ErrMechanismDoesNotExist, ErrInvalidSpecHash} {
		if e.Code < 81 || e.Code > 92 || ErrorByCode(e.Code) != e || !errors.Is(txErr(e, "x"), e) {
			t.Errorf("%s: code %d", e.Name, e.Code)
		}
	}
}

// A SetSubnetSpec with mechanism shares schedules both for the same
// boundary in one transaction; a SetMechanisms after it replaces the
// shares, not the spec.
func TestSubnetSpecWithMechanismsSwitchTogether(t *testing.T) {
	h := scenario(t)
	hash := bytes.Repeat([]byte{5}, 32)
	res := h.ok(kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: hash, MechanismShares: []uint32{2, 1}}}})
	if len(res.Events) != 2 || res.Events[0].Type != "subnet_spec_scheduled" || res.Events[1].Type != "mechanisms_scheduled" ||
		res.Events[0].Attrs["effective_block"] != res.Events[1].Attrs["effective_block"] {
		t.Fatalf("events %+v", res.Events)
	}
	at := h.toEpochBlock(1)
	info, _ := h.s.Subnet(1)
	mech, _ := h.s.Mechanisms(1)
	if !bytes.Equal(info.SpecHash, hash) || info.SpecEffectiveBlock != at || mech.Count() != 2 || mech.Shares[0] != 2 {
		t.Fatalf("at the boundary: %+v, %+v", info, mech)
	}
}
