package chain

import (
	"bytes"
	"errors"
	"reflect"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

// Keys of the children scenario, besides the standard scenario's.
var (
	hParent = testKey(20) // owned by kOther, staked, not registered on subnet 1
	hChild  = testKey(21) // an unregistered hotkey for children
)

func mSetChildren(netuid uint32, parent Address, children ...Child) *chainpb.Msg {
	list := make([]*chainpb.Child, len(children))
	for i, c := range children {
		list[i] = &chainpb.Child{Hotkey: append([]byte(nil), c.Hotkey[:]...), Proportion: c.Proportion}
	}
	return &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: netuid, Hotkey: parent[:], Children: list}}}
}

func mChildkeyTake(netuid uint32, hotkey Address, take uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetChildkeyTake{SetChildkeyTake: &chainpb.SetChildkeyTake{Netuid: netuid, Hotkey: hotkey[:], Take: take}}}
}

func child(k *wallet.PrivateKey, p uint64) Child { return Child{Hotkey: addr(k), Proportion: p} }

// half is 50%: floor(own · half / (2^64−1)) is own/2 for the even stakes
// the tests use.
const half = 1 << 63

// childScenario is the standard scenario plus hParent, a hotkey of kOther
// with 2,000,000 staked that holds no uid, and children_cooldown 10.
func childScenario(t testing.TB) *harness {
	t.Helper()
	h := scenario(t)
	h.ok(kOther, mRootRegister(addr(hParent)))
	h.ok(kOther, mAddStake(addr(hParent), 2_000_000))
	h.ok(kRoot, mGlobal("children_cooldown", 10))
	return h
}

// refusedUnchanged checks that msg signed by k is refused by CheckTx with
// want and, delivered in a block, leaves every record as the same block
// without it does, but the signer's sequence.
func refusedUnchanged(t *testing.T, mk func(t testing.TB) *harness, k *wallet.PrivateKey, msg *chainpb.Msg, want *TxError) {
	t.Helper()
	a, b := mk(t), mk(t)
	before, hash := snapshot(a.s), a.s.AppHash()
	raw := a.tx(k, msg)
	if err := a.s.CheckTx(raw); !errors.Is(err, want) {
		t.Fatalf("CheckTx: %v, want %s", err, want.Name)
	}
	if !bytes.Equal(a.s.AppHash(), hash) || !reflect.DeepEqual(snapshot(a.s), before) {
		t.Fatal("CheckTx changed the state")
	}
	res := a.block(raw)
	if res.Txs[0].Code != want.Code {
		t.Fatalf("delivered: code %d (%s), want %s", res.Txs[0].Code, res.Txs[0].Error, want.Name)
	}
	b.block()
	ra, rb := snapshot(a.s), snapshot(b.s)
	if len(ra) != len(rb) {
		t.Fatalf("%d records, %d without the refused tx", len(ra), len(rb))
	}
	for key, v := range ra {
		if key != keyAccount(addr(k)) && rb[key] != v {
			t.Errorf("refused tx changed %x", key)
		}
	}
	// With the signer's sequence made equal, the app hashes agree.
	b.s.account(addr(k)).Sequence++
	b.s.markAccount(addr(k))
	a.block()
	b.block()
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("app hash differs from the state without the refused tx")
	}
}

func TestSetChildrenBounds(t *testing.T) {
	p := addr(hParent)
	five := []Child{child(hVal, 1), child(hMin1, 1), child(hMin2, 1), child(hFree, 1), child(hChild, 1)}
	six := append(append([]Child(nil), five...), child(testKey(22), 1))
	bad := &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: 1, Hotkey: p[:], Children: []*chainpb.Child{{Hotkey: []byte{1, 2, 3}, Proportion: 1}}}}}
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		key   *wallet.PrivateKey
		msg   *chainpb.Msg
		want  *TxError
	}{
		{"bad parent address", nil, kOther, &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: 1, Hotkey: []byte{9}}}}, ErrInvalidAddress},
		{"bad child address", nil, kOther, bad, ErrInvalidAddress},
		{"missing subnet", nil, kOther, mSetChildren(7, p, child(hVal, 1)), ErrNetworkDoesNotExist},
		{"root network", nil, kOther, mSetChildren(0, p, child(hVal, 1)), ErrOnRootNetwork},
		{"unknown parent", nil, kOther, mSetChildren(1, addr(hChild), child(hVal, 1)), ErrNotRegistered},
		{"not the owner", nil, kOwner, mSetChildren(1, p, child(hVal, 1)), ErrNonAssociatedColdkey},
		{"five children", nil, kOther, mSetChildren(1, p, five...), nil},
		{"six children", nil, kOther, mSetChildren(1, p, six...), ErrTooManyChildren},
		{"duplicate", nil, kOther, mSetChildren(1, p, child(hVal, 1), child(hMin1, 1), child(hVal, 2)), ErrDuplicateChild},
		{"self", nil, kOther, mSetChildren(1, p, child(hVal, 1), child(hParent, 1)), ErrInvalidChild},
		{"zero proportion", nil, kOther, mSetChildren(1, p, child(hVal, 1), child(hMin1, 0)), ErrInvalidChildProportion},
		{"sum 2^64−1", nil, kOther, mSetChildren(1, p, child(hVal, ProportionOne-1), child(hMin1, 1)), nil},
		{"sum 2^64", nil, kOther, mSetChildren(1, p, child(hVal, ProportionOne), child(hMin1, 1)), ErrInvalidChildProportion},
		{"cycle", func(h *harness) {
			// hVal becomes a parent of hParent...
			h.ok(kOwner, mSetChildren(1, addr(hVal), child(hParent, half)))
			h.advance(10)
		}, kOther, mSetChildren(1, p, child(hVal, half)), ErrChildParentCycle},
		{"cycle on another subnet is none", func(h *harness) {
			h.ok(kOwner, mRegisterNetwork("beta"))
			h.ok(kOwner, mSetChildren(2, addr(hVal), child(hParent, half)))
			h.advance(10)
		}, kOther, mSetChildren(1, p, child(hVal, half)), nil},
		{"revoke (empty list)", nil, kOther, mSetChildren(1, p), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func(t testing.TB) *harness {
				h := childScenario(t)
				if tc.setup != nil {
					tc.setup(h)
				}
				return h
			}
			if tc.want != nil {
				refusedUnchanged(t, mk, tc.key, tc.msg, tc.want)
				return
			}
			h := mk(t)
			h.ok(tc.key, tc.msg)
			info, _ := h.s.ChildKeys(1, p)
			want := len(tc.msg.GetSetChildren().Children)
			if info.Pending == nil || len(info.Pending.Children) != want || info.Pending.ApplyAt != h.s.Height()+10 {
				t.Fatalf("pending %+v, want %d children at %d", info.Pending, want, h.s.Height()+10)
			}
		})
	}
}

// A change set at block b with cooldown C is pending through block b+C−1
// and applies at the block step of b+C; revoking does the same.
func TestChildrenCooldownBoundary(t *testing.T) {
	const cooldown = 10
	p := addr(hParent)
	for _, tc := range []struct {
		name    string
		after   uint64 // blocks after b
		applied bool
	}{
		{"one block before", cooldown - 1, false},
		{"at the cooldown", cooldown, true},
		{"one block after", cooldown + 1, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := childScenario(t)
			h.ok(kOther, mSetChildren(1, p, child(hVal, half)))
			b := h.s.Height()
			h.advance(int(tc.after))
			info, _ := h.s.ChildKeys(1, p)
			parents, _ := h.s.ChildKeys(1, addr(hVal))
			if !tc.applied {
				if len(info.Children) != 0 || info.Pending == nil || info.Pending.ApplyAt != b+cooldown || len(parents.Parents) != 0 {
					t.Fatalf("at b+%d: %+v, parents of the child %+v", tc.after, info, parents.Parents)
				}
				return
			}
			if info.Pending != nil || !reflect.DeepEqual(info.Children, []Child{child(hVal, half)}) ||
				!reflect.DeepEqual(parents.Parents, []Child{{Hotkey: p, Proportion: half}}) {
				t.Fatalf("at b+%d: %+v, parents of the child %+v", tc.after, info, parents.Parents)
			}
			if parents.EffectiveStake != parents.Stake+1_000_000 || info.EffectiveStake != 1_000_000 {
				t.Fatalf("effective stakes: child %d (own %d), parent %d", parents.EffectiveStake, parents.Stake, info.EffectiveStake)
			}
		})
	}
	t.Run("the applying block's events", func(t *testing.T) {
		h := childScenario(t)
		h.ok(kOther, mSetChildren(1, p, child(hVal, half)))
		h.advance(cooldown - 1)
		res := h.block()
		if !hasEvent(res.Events, "children_set") {
			t.Fatalf("events %+v", res.Events)
		}
	})
	for _, tc := range []struct {
		name    string
		after   uint64
		revoked bool
	}{{"revoke one block before", cooldown - 1, false}, {"revoke at the cooldown", cooldown, true}, {"revoke one block after", cooldown + 1, true}} {
		t.Run(tc.name, func(t *testing.T) {
			h := childScenario(t)
			h.ok(kOther, mSetChildren(1, p, child(hVal, half)))
			h.advance(cooldown)
			h.ok(kOther, mSetChildren(1, p))
			h.advance(int(tc.after))
			info, _ := h.s.ChildKeys(1, p)
			parents, _ := h.s.ChildKeys(1, addr(hVal))
			if got := len(info.Children) == 0 && info.Pending == nil && len(parents.Parents) == 0; got != tc.revoked {
				t.Fatalf("revoked %v, want %v: %+v", got, tc.revoked, info)
			}
		})
	}
	t.Run("a new change replaces the pending one and restarts the cooldown", func(t *testing.T) {
		h := childScenario(t)
		h.ok(kOther, mSetChildren(1, p, child(hVal, half)))
		h.advance(5)
		h.ok(kOther, mSetChildren(1, p, child(hMin1, half)))
		b := h.s.Height()
		h.advance(cooldown - 1)
		if info, _ := h.s.ChildKeys(1, p); len(info.Children) != 0 || info.Pending.ApplyAt != b+cooldown {
			t.Fatalf("%+v", info)
		}
		h.block()
		if info, _ := h.s.ChildKeys(1, p); !reflect.DeepEqual(info.Children, []Child{child(hMin1, half)}) {
			t.Fatalf("%+v", info)
		}
	})
	t.Run("cooldown 0 applies at the next block", func(t *testing.T) {
		h := childScenario(t)
		h.ok(kRoot, mGlobal("children_cooldown", 0))
		h.ok(kOther, mSetChildren(1, p, child(hVal, half)))
		if info, _ := h.s.ChildKeys(1, p); info.Pending == nil || info.Pending.ApplyAt != h.s.Height()+1 {
			t.Fatalf("%+v", info)
		}
		h.block()
		if info, _ := h.s.ChildKeys(1, p); len(info.Children) != 1 {
			t.Fatalf("%+v", info)
		}
	})
}

func hasEvent(events []Event, typ string) bool {
	for _, e := range events {
		if e.Type == typ {
			return true
		}
	}
	return false
}

// Two hotkeys scheduling each other as children within one cooldown: the
// first to apply (netuid, then hotkey order) wins, the other is dropped
// at its block with an event, and the graph keeps no cycle.
func TestChildrenCycleDroppedAtApply(t *testing.T) {
	h := childScenario(t)
	h.ok(kOther, mSetChildren(1, addr(hParent), child(hVal, half)))
	h.ok(kOwner, mSetChildren(1, addr(hVal), child(hParent, half)))
	h.advance(8)
	res := h.block()
	if !hasEvent(res.Events, "children_set") {
		t.Fatalf("first change not applied: %+v", res.Events)
	}
	res = h.block()
	if !hasEvent(res.Events, "children_dropped") {
		t.Fatalf("second change not dropped: %+v", res.Events)
	}
	a, _ := h.s.ChildKeys(1, addr(hParent))
	b, _ := h.s.ChildKeys(1, addr(hVal))
	if a.Pending != nil || b.Pending != nil || len(a.Children) != 1 || len(b.Children) != 0 || len(b.Parents) != 1 || len(a.Parents) != 0 {
		t.Fatalf("parent %+v\nchild %+v", a, b)
	}
}

func TestSetChildkeyTakeBounds(t *testing.T) {
	hk := addr(hVal)
	for _, tc := range []struct {
		name string
		key  *wallet.PrivateKey
		msg  *chainpb.Msg
		want *TxError
	}{
		{"zero", kOwner, mChildkeyTake(1, hk, 0), nil},
		{"max (18%)", kOwner, mChildkeyTake(1, hk, 11796), nil},
		{"above max", kOwner, mChildkeyTake(1, hk, 11797), ErrInvalidChildkeyTake},
		{"above u16", kOwner, mChildkeyTake(1, hk, 1<<16), ErrInvalidChildkeyTake},
		{"not the owner", kOther, mChildkeyTake(1, hk, 1), ErrNonAssociatedColdkey},
		{"unknown hotkey", kOwner, mChildkeyTake(1, addr(hChild), 1), ErrNotRegistered},
		{"root network", kOwner, mChildkeyTake(0, hk, 1), ErrOnRootNetwork},
		{"missing subnet", kOwner, mChildkeyTake(9, hk, 1), ErrNetworkDoesNotExist},
		{"bad address", kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SetChildkeyTake{SetChildkeyTake: &chainpb.SetChildkeyTake{Netuid: 1, Hotkey: []byte{1}}}}, ErrInvalidAddress},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.want != nil {
				refusedUnchanged(t, childScenario, tc.key, tc.msg, tc.want)
				return
			}
			h := childScenario(t)
			h.ok(tc.key, tc.msg)
			info, _ := h.s.ChildKeys(1, hk)
			if uint32(info.ChildkeyTake) != tc.msg.GetSetChildkeyTake().Take || info.ChildkeyTakeBlock != h.s.Height() {
				t.Fatalf("%+v", info)
			}
		})
	}
}

// Raising a childkey take set at block b with limit L is refused through
// block b+L−1 and accepted from b+L; lowering is never limited.
func TestChildkeyTakeRateLimitBoundary(t *testing.T) {
	const limit = 20
	hk := addr(hVal)
	for _, tc := range []struct {
		name  string
		after uint64
		want  *TxError
	}{
		{"one block before", limit - 1, ErrChildkeyTakeRateLimit},
		{"at the limit", limit, nil},
		{"one block after", limit + 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			mk := func(t testing.TB) *harness {
				h := childScenario(t)
				h.ok(kRoot, mGlobal("childkey_take_rate_limit", limit))
				h.ok(kOwner, mChildkeyTake(1, hk, 100))
				h.advance(int(tc.after) - 1)
				return h
			}
			if tc.want != nil {
				refusedUnchanged(t, mk, kOwner, mChildkeyTake(1, hk, 101), tc.want)
				// Lowering in the same block is accepted.
				h := mk(t)
				h.ok(kOwner, mChildkeyTake(1, hk, 99))
				return
			}
			h := mk(t)
			h.ok(kOwner, mChildkeyTake(1, hk, 101))
			if info, _ := h.s.ChildKeys(1, hk); info.ChildkeyTake != 101 {
				t.Fatalf("%+v", info)
			}
		})
	}
	t.Run("lowering restarts the limit", func(t *testing.T) {
		h := childScenario(t)
		h.ok(kRoot, mGlobal("childkey_take_rate_limit", limit))
		h.ok(kOwner, mChildkeyTake(1, hk, 100))
		h.advance(limit)
		h.ok(kOwner, mChildkeyTake(1, hk, 50))
		res := h.block(h.tx(kOwner, mChildkeyTake(1, hk, 60)))
		if res.Txs[0].Code != ErrChildkeyTakeRateLimit.Code {
			t.Fatalf("raise after a lowering: %+v", res.Txs[0])
		}
	})
}

// recordingEpoch runs stakeEpoch and keeps the last input.
type recordingEpoch struct{ last *EpochInput }

func (r *recordingEpoch) run(in *EpochInput) ([]EpochNeuronResult, error) {
	cp := *in
	cp.Neurons = append([]EpochNeuron(nil), in.Neurons...)
	r.last = &cp
	return stakeEpoch(in)
}

// epochBlock applies blocks until the one that runs subnet 1's epoch and
// returns its result.
func epochBlock(h *harness) *BlockResult {
	for BlocksUntilNextEpoch(1, h.s.subnets[1].Params.Tempo, h.s.Height()+1) != 0 {
		h.block()
	}
	return h.block()
}

// A parent lending 50% of its stake to a child validator: the epoch
// counts the child with the lent stake and the parent (a validator too)
// without it, and the child's validator emission earned with the lent
// stake goes back to the parent, less the childkey take, to the base unit.
func TestChildrenEpochDividends(t *testing.T) {
	for _, tc := range []struct {
		name      string
		sameOwner bool
		take      uint64
	}{
		{"different owners, 10% take", false, 6553},
		{"different owners, no take", false, 0},
		{"same owner: no take", true, 6553},
	} {
		t.Run(tc.name, func(t *testing.T) {
			gen := testGenesis(kRoot, kOwner, kOther)
			gen.Globals.ChildrenCooldown = 1
			rec := &recordingEpoch{}
			s, err := NewState(gen, rec.run)
			if err != nil {
				t.Fatal(err)
			}
			h := &harness{t: t, s: s, seq: map[Address]uint64{}}
			h.ok(kOwner, mRegisterNetwork("alpha"))
			parentOwner := kOther
			if tc.sameOwner {
				parentOwner = kOwner
			}
			child, parent, miner := addr(hVal), addr(hParent), addr(hMin1)
			h.ok(kOwner, mBurned(1, child))
			h.ok(parentOwner, mBurned(1, parent))
			h.ok(kOwner, mBurned(1, miner))
			h.ok(kOwner, mAddStake(child, 1_000_000))
			h.ok(parentOwner, mAddStake(parent, 1_000_000))
			h.ok(kOwner, mChildkeyTake(1, child, uint32(tc.take)))
			h.ok(parentOwner, mSetChildren(1, parent, Child{Hotkey: child, Proportion: half}))
			h.block() // applies the children
			if info, _ := h.s.ChildKeys(1, parent); len(info.Children) != 1 {
				t.Fatalf("children not applied: %+v", info)
			}
			stake := func(a Address) uint64 { return h.s.hotkeyStake(a) }
			beforeChild, beforeParent, beforeTotal := stake(child), stake(parent), h.s.Supply().TotalStake
			res := epochBlock(h)
			in := rec.last
			if in == nil || !hasEvent(res.Events, "epoch") {
				t.Fatal("no epoch")
			}
			// uid 0 is the child, uid 1 the parent, uid 2 the miner.
			if in.Neurons[0].Stake != 1_500_000 || in.Neurons[1].Stake != 500_000 || in.Neurons[2].Stake != 0 {
				t.Fatalf("epoch stakes %d %d %d, want 1500000 500000 0", in.Neurons[0].Stake, in.Neurons[1].Stake, in.Neurons[2].Stake)
			}
			e := in.Emission
			vChild, vParent := mulDiv(e, 1_500_000, 2_000_000), mulDiv(e, 500_000, 2_000_000)
			share := mulDiv(vChild, 500_000, 1_500_000)
			if !tc.sameOwner {
				share -= mulDiv(share, tc.take, 65535)
			}
			gotChild, gotParent := stake(child)-beforeChild, stake(parent)-beforeParent
			if gotChild != vChild-share || gotParent != vParent+share {
				t.Fatalf("paid child %d parent %d, want %d and %d (emission %d)", gotChild, gotParent, vChild-share, vParent+share, e)
			}
			if paid := h.s.Supply().TotalStake - beforeTotal; paid != vChild+vParent || gotChild+gotParent != paid {
				t.Fatalf("paid %d in all, emitted %d", paid, vChild+vParent)
			}
			if e < 1_000_000 || share == 0 {
				t.Fatalf("emission %d too small to tell", e)
			}
		})
	}
}

// The parent's share goes through the parent's delegate payout: its
// nominators get their part net of the parent's delegate take.
func TestChildrenDividendsReachParentNominators(t *testing.T) {
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.Globals.ChildrenCooldown = 1
	h := newHarness(t, gen)
	h.ok(kOwner, mRegisterNetwork("alpha"))
	child, parent := addr(hVal), addr(hParent)
	h.ok(kOwner, mBurned(1, child))
	h.ok(kOther, mRootRegister(parent)) // a delegate with the default take
	h.ok(kOwner, mAddStake(child, 1_000_000))
	h.ok(kOwner, mAddStake(parent, 1_000_000)) // kOwner nominates the parent
	h.ok(kOther, mSetChildren(1, parent, Child{Hotkey: child, Proportion: ProportionOne}))
	h.block()
	nominator, owner := h.s.Stake(addr(kOwner), parent), h.s.Stake(addr(kOther), parent)
	epochBlock(h)
	gotNom, gotOwner := h.s.Stake(addr(kOwner), parent)-nominator, h.s.Stake(addr(kOther), parent)-owner
	if gotNom == 0 || gotOwner == 0 {
		t.Fatalf("nominator got %d, parent's owner %d", gotNom, gotOwner)
	}
	hk, _ := h.s.Hotkey(parent)
	// The nominator holds all the parent's stake: it gets the share less
	// the delegate take, which goes to the owner.
	if want := mulDiv(gotNom+gotOwner, uint64(hk.Take), 65535); gotOwner != want {
		t.Fatalf("owner got %d of %d, want the take %d", gotOwner, gotNom+gotOwner, want)
	}
}

// With no children on a subnet the epoch sees each hotkey's own stake and
// the child index is not consulted beyond one lookup.
func TestNoChildrenNoInheritance(t *testing.T) {
	h := childScenario(t)
	in := make([]EpochNeuron, 3)
	if got := h.s.applyChildStakes(h.s.subnets[1], in); got != nil {
		t.Fatalf("inheritance %v on a subnet without children", got)
	}
}

func TestChildrenSurviveReopen(t *testing.T) {
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.Globals.ChildrenCooldown = 3
	sh := openStoreHarness(t, gen)
	sh.block(sh.tx(kOwner, mRegisterNetwork("alpha")))
	sh.block(sh.tx(kOwner, mBurned(1, addr(hVal))), sh.tx(kOther, mRootRegister(addr(hParent))))
	sh.block(sh.tx(kOther, mSetChildren(1, addr(hParent), child(hVal, half), child(hMin1, 7))), sh.tx(kOwner, mChildkeyTake(1, addr(hVal), 500)))
	sh.block()
	sh.block()
	sh.block() // the children apply here
	// A pending change.
	sh.send(kOther, mSetChildren(1, addr(hParent), child(hMin2, 9)))
	want := map[Address]ChildKeysInfo{}
	for _, k := range []*wallet.PrivateKey{hParent, hVal, hMin1, hMin2} {
		want[addr(k)], _ = sh.s.ChildKeys(1, addr(k))
	}
	sh.reopen()
	for a, w := range want {
		if got, _ := sh.s.ChildKeys(1, a); !reflect.DeepEqual(got, w) {
			t.Fatalf("%s after reopen:\n%+v\nwant\n%+v", a, got, w)
		}
	}
	if w := want[addr(hParent)]; len(w.Children) != 2 || w.Pending == nil || want[addr(hVal)].ChildkeyTake != 500 || len(want[addr(hMin1)].Parents) != 1 {
		t.Fatalf("scenario did not set what it should: %+v", want)
	}
	// The pending change still applies after the reopen.
	for range 3 {
		sh.block()
	}
	if got, _ := sh.s.ChildKeys(1, addr(hParent)); !reflect.DeepEqual(got.Children, []Child{child(hMin2, 9)}) {
		t.Fatalf("after the reopen's cooldown %+v", got)
	}
	if got, _ := sh.s.ChildKeys(1, addr(hVal)); len(got.Parents) != 0 {
		t.Fatalf("old child keeps its parent %+v", got)
	}
}

func TestChildRecordEncoding(t *testing.T) {
	r := &childRecord{children: []Child{child(hVal, 5)}, pending: &PendingChildren{Children: []Child{child(hMin1, 6)}, ApplyAt: 9}, take: 7, takeBlock: 3}
	got, err := decodeChildRecord(r.encode())
	if err != nil || !reflect.DeepEqual(got, r) {
		t.Fatalf("%+v %v", got, err)
	}
	var e encoder
	encodeChildren(&e, make([]Child, MaxChildren+1))
	e.boolean(false)
	e.u64(0)
	e.u64(0)
	if _, err := decodeChildRecord(e.b); err == nil {
		t.Fatal("six children decoded")
	}
	if _, err := decodeChildRecord(append(r.encode(), 0)); err == nil {
		t.Fatal("trailing byte decoded")
	}
}

// moveChildRecords (for a hotkey swap) moves a hotkey's children, pending
// change and take, and renames it in its parents' lists.
func TestMoveChildRecords(t *testing.T) {
	h := childScenario(t)
	h.ok(kOther, mSetChildren(1, addr(hParent), child(hVal, half)))
	h.ok(kOwner, mSetChildren(1, addr(hVal), child(hMin1, 5)))
	h.ok(kOwner, mChildkeyTake(1, addr(hVal), 42))
	h.advance(10)
	h.ok(kOwner, mSetChildren(1, addr(hVal), child(hMin2, 6)))
	newHK := addr(hFree)
	h.s.moveChildRecords(addr(hVal), newHK)
	h.block()
	if _, ok := h.s.ch.recs[childKey{1, addr(hVal)}]; ok || h.s.hashes[keyChildren(1, addr(hVal))] != ([32]byte{}) {
		t.Fatal("the old hotkey's record is still stored")
	}
	old, _ := h.s.ChildKeys(1, addr(hVal))
	moved, _ := h.s.ChildKeys(1, newHK)
	parent, _ := h.s.ChildKeys(1, addr(hParent))
	min1, _ := h.s.ChildKeys(1, addr(hMin1))
	if len(old.Children)+len(old.Parents) != 0 || old.Pending != nil || old.ChildkeyTake != 0 {
		t.Fatalf("old hotkey keeps %+v", old)
	}
	if !reflect.DeepEqual(moved.Children, []Child{child(hMin1, 5)}) || moved.Pending == nil || moved.ChildkeyTake != 42 ||
		!reflect.DeepEqual(moved.Parents, []Child{{Hotkey: addr(hParent), Proportion: half}}) {
		t.Fatalf("new hotkey %+v", moved)
	}
	if !reflect.DeepEqual(parent.Children, []Child{{Hotkey: newHK, Proportion: half}}) || !reflect.DeepEqual(min1.Parents, []Child{{Hotkey: newHK, Proportion: 5}}) {
		t.Fatalf("parent %+v, grandchild %+v", parent, min1)
	}
	// Reloading the records gives the same index.
	recs := h.s.allRecords()
	s2, err := restoreState(h.s.Height(), h.s.AppHash(), recs, stakeEpoch)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(s2.ch.parents, h.s.ch.parents) || !reflect.DeepEqual(s2.ch.edges, h.s.ch.edges) || s2.ch.pending != h.s.ch.pending {
		t.Fatal("restored index differs")
	}
}

// FuzzDecodeChildRecord: any bytes decode to a record or an error, never
// a panic, and a decoded record round-trips through its encoding.
func FuzzDecodeChildRecord(f *testing.F) {
	f.Add((&childRecord{children: []Child{child(hVal, 5)}, pending: &PendingChildren{ApplyAt: 9}, take: 7, takeBlock: 3}).encode())
	f.Add([]byte{})
	f.Add([]byte{6})
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := decodeChildRecord(b)
		if err != nil {
			return
		}
		if len(r.children) > MaxChildren || (r.pending != nil && len(r.pending.Children) > MaxChildren) {
			t.Fatalf("decoded %d children", len(r.children))
		}
		again, err := decodeChildRecord(r.encode())
		if err != nil || !reflect.DeepEqual(again, r) {
			t.Fatalf("round trip: %+v %v, want %+v", again, err, r)
		}
	})
}

// swap_hotkey moves child keys: the parent's edge goes to the new hotkey,
// which keeps the child's take and its effective stake; a swap to a
// hotkey the old one lends to is refused and changes nothing; a parent
// naming both the old and the new hotkey keeps one edge, at old's
// proportion.
func TestSwapHotkeyMovesChildren(t *testing.T) {
	setup := func(t testing.TB) *harness {
		h := childScenario(t)
		h.ok(kOther, mSetChildren(1, addr(hParent), child(hVal, half), child(hFree, 7)))
		h.ok(kOwner, mSetChildren(1, addr(hVal), child(hChild, 9)))
		h.ok(kOwner, mChildkeyTake(1, addr(hVal), 300))
		h.advance(10)
		return h
	}
	h := setup(t)
	before, _ := h.s.ChildKeys(1, addr(hVal))
	h.ok(kOwner, mSwapHotkey(addr(hVal), addr(testKey(30))))
	nw := addr(testKey(30))
	moved, _ := h.s.ChildKeys(1, nw)
	parent, _ := h.s.ChildKeys(1, addr(hParent))
	old, _ := h.s.ChildKeys(1, addr(hVal))
	if moved.ChildkeyTake != 300 || !reflect.DeepEqual(moved.Children, []Child{child(hChild, 9)}) || moved.EffectiveStake != before.EffectiveStake ||
		!reflect.DeepEqual(moved.Parents, []Child{{Hotkey: addr(hParent), Proportion: half}}) {
		t.Fatalf("new hotkey %+v (old was %+v)", moved, before)
	}
	if !reflect.DeepEqual(parent.Children, []Child{{Hotkey: nw, Proportion: half}, child(hFree, 7)}) || len(old.Children)+len(old.Parents) != 0 || old.ChildkeyTake != 0 {
		t.Fatalf("parent %+v, old %+v", parent, old)
	}
	// Reopening from the records gives the same state.
	if _, err := restoreState(h.s.Height(), h.s.AppHash(), h.s.allRecords(), stakeEpoch); err != nil {
		t.Fatal(err)
	}
	t.Run("to its own child", func(t *testing.T) {
		refusedUnchanged(t, setup, kOwner, mSwapHotkey(addr(hVal), addr(hChild)), ErrInvalidChild)
	})
	t.Run("to a sibling", func(t *testing.T) {
		h := setup(t)
		// hFree has no account: kOwner may swap hVal to it; the parent
		// then lends to hFree once, at hVal's proportion.
		h.ok(kOwner, mSwapHotkey(addr(hVal), addr(hFree)))
		parent, _ := h.s.ChildKeys(1, addr(hParent))
		if !reflect.DeepEqual(parent.Children, []Child{{Hotkey: addr(hFree), Proportion: half}}) {
			t.Fatalf("parent %+v", parent)
		}
		if c, _ := h.s.ChildKeys(1, addr(hFree)); len(c.Parents) != 1 || c.Parents[0].Proportion != half {
			t.Fatalf("new hotkey %+v", c)
		}
	})
}
