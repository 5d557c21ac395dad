package chain

import (
	"bytes"
	"errors"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func mSetTake(hotkey Address, take uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: hotkey[:], Take: take}}}
}

// delegateScenario is scenario with hVal opened as a delegate at the
// default take, kOther staking 3,000,000 on it, and take_rate_limit set
// to limit. It returns the block hVal opened at.
func delegateScenario(t *testing.T, limit uint64) (*harness, uint64) {
	t.Helper()
	h := scenario(t)
	h.ok(kRoot, mGlobal("take_rate_limit", limit))
	h.ok(kOwner, mDelegate(addr(hVal), 0))
	opened := h.s.Height()
	h.ok(kOther, mAddStake(addr(hVal), 3_000_000))
	return h, opened
}

func TestTakeDefaults(t *testing.T) {
	g := DefaultGlobals()
	// 18% of 65535 is 11796.3: subtensor's InitialDefaultDelegateTake.
	if g.MaxTake != 11796 || g.DefaultTake != 11796 || g.MinTake != 0 || 65535*18/100 != 11796 {
		t.Fatalf("take defaults %d %d %d", g.MinTake, g.DefaultTake, g.MaxTake)
	}
	if g.TakeRateLimit != 30*24*3600 {
		t.Fatalf("take_rate_limit %d, want 30 days of 1 s blocks", g.TakeRateLimit)
	}
	if l := LocalnetGenesis("x", Address{}, nil).Globals.TakeRateLimit; l != LocalnetTakeRateLimit || l == 0 {
		t.Fatalf("localnet take_rate_limit %d", l)
	}
	for _, tc := range []struct {
		name string
		set  func(*Globals)
		ok   bool
	}{
		{"defaults", func(*Globals) {}, true},
		{"min above default", func(g *Globals) { g.MinTake = g.DefaultTake + 1 }, false},
		{"min at default", func(g *Globals) { g.MinTake = g.DefaultTake }, true},
		{"min above u16", func(g *Globals) { g.MinTake = 65536 }, false},
		{"rate limit 0", func(g *Globals) { g.TakeRateLimit = 0 }, true},
		{"rate limit above 2^32", func(g *Globals) { g.TakeRateLimit = 1<<32 + 1 }, false},
	} {
		g := DefaultGlobals()
		tc.set(&g)
		if err := g.validate(); (err == nil) != tc.ok {
			t.Errorf("%s: %v", tc.name, err)
		}
	}
}

// Every refused SetTake: CheckTx names the rule and changes nothing (app
// hash and every record); delivered in a block it changes nothing but the
// signer's sequence.
func TestSetTakeRefusals(t *testing.T) {
	for _, tc := range []struct {
		name  string
		setup func(h *harness)
		key   *wallet.PrivateKey
		msg   *chainpb.Msg
		want  *TxError
	}{
		{"bad hotkey address", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: []byte{1, 2}, Take: 1}}}, ErrInvalidAddress},
		{"unknown hotkey", nil, kOwner, mSetTake(addr(hFree), 100), ErrNotRegistered},
		{"not the owner", nil, kOther, mSetTake(addr(hVal), 100), ErrNonAssociatedColdkey},
		{"signed by the hotkey", nil, hVal, mSetTake(addr(hVal), 100), ErrNonAssociatedColdkey},
		{"not a delegate", nil, kOwner, mSetTake(addr(hMin1), 100), ErrNotDelegate},
		{"above max_take", nil, kOwner, mSetTake(addr(hVal), 11797), ErrInvalidTake},
		{"above u16", nil, kOwner, mSetTake(addr(hVal), 70000), ErrInvalidTake},
		{"below min_take", func(h *harness) { h.ok(kRoot, mGlobal("min_take", 1000)) }, kOwner, mSetTake(addr(hVal), 999), ErrTakeTooLow},
		{"unchanged", nil, kOwner, mSetTake(addr(hVal), 11796), ErrTakeUnchanged},
		{"raise inside the limit", func(h *harness) { h.ok(kOwner, mSetTake(addr(hVal), 5000)) }, kOwner, mSetTake(addr(hVal), 5001), ErrTakeRateLimit},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, _ := delegateScenario(t, 100)
			if tc.setup != nil {
				tc.setup(h)
			}
			before, beforeHash := snapshot(h.s), h.s.AppHash()
			raw := h.tx(tc.key, tc.msg)
			if err := h.s.CheckTx(raw); !errors.Is(err, tc.want) {
				t.Fatalf("CheckTx: %v, want %s", err, tc.want.Name)
			}
			if !bytes.Equal(h.s.AppHash(), beforeHash) {
				t.Fatal("CheckTx changed the app hash")
			}
			for k, v := range snapshot(h.s) {
				if before[k] != v {
					t.Fatalf("CheckTx changed %x", k)
				}
			}
			res := h.block(raw)
			if res.Txs[0].Code != tc.want.Code {
				t.Fatalf("delivered: code %d (%s), want %s", res.Txs[0].Code, res.Txs[0].Error, tc.want.Name)
			}
			if snapshot(h.s)[keyHotkey(addr(hVal))] != before[keyHotkey(addr(hVal))] {
				t.Fatal("a refused SetTake changed the delegate")
			}
		})
	}
}

// A refused SetTake leaves the app hash where the same block without it
// would: two states, one given the refused transaction, differ only in
// the signer's sequence number.
func TestRefusedSetTakeKeepsAppHash(t *testing.T) {
	a, _ := delegateScenario(t, 100)
	b, _ := delegateScenario(t, 100)
	for _, h := range []*harness{a, b} {
		h.ok(kOwner, mSetTake(addr(hVal), 100))
	}
	a.block(a.tx(kOwner, mSetTake(addr(hVal), 200))) // a raise inside the limit
	b.block()
	ra, rb := snapshot(a.s), snapshot(b.s)
	for k, v := range ra {
		if k != keyAccount(addr(kOwner)) && rb[k] != v {
			t.Errorf("%x differs", k)
		}
	}
	if got := a.s.Account(addr(kOwner)).Sequence; got != b.s.Account(addr(kOwner)).Sequence+1 {
		t.Fatalf("sequence %d", got)
	}
	// With the sequence equal again, the app hashes agree.
	b.block(b.tx(kOwner, mSetTake(addr(hVal), 100))) // refused: unchanged
	a.block()
	if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
		t.Fatal("app hashes differ after the same refusals")
	}
}

// Lowering applies at once at any block; a raise is refused until
// take_rate_limit blocks after the opening or the last raise: one block
// before the limit refused, at it and one after accepted.
func TestTakeRateLimitBoundary(t *testing.T) {
	const limit = 10
	for _, tc := range []struct {
		name  string
		after uint64 // blocks after the opening
		want  *TxError
	}{
		{"right after lowering", 3, ErrTakeRateLimit},
		{"one block before", limit - 1, ErrTakeRateLimit},
		{"at the limit", limit, nil},
		{"one block after", limit + 1, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h, opened := delegateScenario(t, limit)
			// Lowering right away is allowed and does not restart the limit.
			h.ok(kOwner, mSetTake(addr(hVal), 6000))
			if d, _ := h.s.Delegate(addr(hVal)); d.Take != 6000 || d.TakeRaisedAt != opened || d.NextTakeRaise != opened+limit {
				t.Fatalf("after lowering: take %d raised at %d next %d (opened %d)", d.Take, d.TakeRaisedAt, d.NextTakeRaise, opened)
			}
			h.advance(int(opened + tc.after - h.s.Height() - 1))
			raw := h.tx(kOwner, mSetTake(addr(hVal), 9000))
			res := h.block(raw)
			if h.s.Height() != opened+tc.after {
				t.Fatalf("applied at %d, want %d", h.s.Height(), opened+tc.after)
			}
			d, _ := h.s.Delegate(addr(hVal))
			if tc.want != nil {
				if res.Txs[0].Code != tc.want.Code {
					t.Fatalf("code %d (%s), want %s", res.Txs[0].Code, res.Txs[0].Error, tc.want.Name)
				}
				if d.Take != 6000 || d.TakeRaisedAt != opened {
					t.Fatalf("after a refusal: take %d raised at %d", d.Take, d.TakeRaisedAt)
				}
				return
			}
			if res.Txs[0].Code != 0 {
				t.Fatalf("refused: %s", res.Txs[0].Error)
			}
			if ev := res.Txs[0].Events; len(ev) != 1 || ev[0].Type != "take_increased" || ev[0].Attrs["take"] != "9000" || ev[0].Attrs["previous"] != "6000" {
				t.Fatalf("events %+v", ev)
			}
			raised := h.s.Height()
			if d.Take != 9000 || d.TakeRaisedAt != raised || d.NextTakeRaise != raised+limit {
				t.Fatalf("after the raise: %+v", d)
			}
			// The next raise counts from this one; lowering stays free.
			if r := h.block(h.tx(kOwner, mSetTake(addr(hVal), 9001))); r.Txs[0].Code != ErrTakeRateLimit.Code {
				t.Fatalf("second raise: %+v", r.Txs[0])
			}
			h.ok(kOwner, mSetTake(addr(hVal), 0))
			h.advance(int(raised + limit - h.s.Height() - 1))
			h.ok(kOwner, mSetTake(addr(hVal), 11796))
		})
	}
	t.Run("zero disables", func(t *testing.T) {
		h, _ := delegateScenario(t, 0)
		h.ok(kOwner, mSetTake(addr(hVal), 10))
		h.ok(kOwner, mSetTake(addr(hVal), 11796))
		h.ok(kOwner, mSetTake(addr(hVal), 10))
		h.ok(kOwner, mSetTake(addr(hVal), 20))
		if d, _ := h.s.Delegate(addr(hVal)); d.NextTakeRaise != 0 || d.Take != 20 {
			t.Fatalf("%+v", d)
		}
	})
}

// The take bounds: min_take and max_take themselves are allowed, a
// BecomeDelegate below min_take is refused too, and a root-registered
// hotkey's automatic delegation starts the rate limit.
func TestTakeBounds(t *testing.T) {
	h, _ := delegateScenario(t, 0)
	h.ok(kRoot, mGlobal("min_take", 500))
	h.ok(kOwner, mSetTake(addr(hVal), 500))
	h.ok(kOwner, mSetTake(addr(hVal), 11796))
	h.ok(kRoot, mGlobal("max_take", 20000))
	h.ok(kOwner, mSetTake(addr(hVal), 20000))
	if r := h.block(h.tx(kOwner, mDelegate(addr(hMin1), 499))); r.Txs[0].Code != ErrTakeTooLow.Code {
		t.Fatalf("BecomeDelegate below min_take: %+v", r.Txs[0])
	}
	if r := h.block(h.tx(kRoot, mGlobal("min_take", 11797))); r.Txs[0].Code != ErrInvalidParamValue.Code {
		t.Fatalf("min_take above default_take: %+v", r.Txs[0])
	}
	h.ok(kRoot, mGlobal("take_rate_limit", 50))
	h.ok(kOwner, mRootRegister(addr(hMin2)))
	d, ok := h.s.Delegate(addr(hMin2))
	if !ok || d.TakeRaisedAt != h.s.Height() || d.Take != 11796 || d.NextTakeRaise != h.s.Height()+50 {
		t.Fatalf("root-registered delegate %+v %v", d, ok)
	}
}

// epoch advances to subnet 1's next epoch.
func (h *harness) epoch() {
	h.t.Helper()
	last := h.s.subnets[1].LastEpochBlock
	for range h.s.subnets[1].Params.Tempo + 2 {
		h.block()
		if h.s.subnets[1].LastEpochBlock != last {
			return
		}
	}
	h.t.Fatal("no epoch")
}

// After an epoch a nominator's stake grows by its share of the validator
// emission net of the take the delegate set, and the payout is recorded.
func TestNominatorPayoutNetOfNewTake(t *testing.T) {
	for _, take := range []uint32{0, 3000, 11796} {
		h, _ := delegateScenario(t, 0)
		if take != 11796 {
			h.ok(kOwner, mSetTake(addr(hVal), take))
		}
		h.epoch() // the first epoch may pay less than a tempo's emission
		other, owner := h.s.Stake(addr(kOther), addr(hVal)), h.s.Stake(addr(kOwner), addr(hVal))
		total := h.s.hotkeyStake(addr(hVal))
		h.epoch()
		n, _ := h.s.NeuronByHotkey(1, addr(hVal))
		validator := n.Emission // stakeEpoch pays validator emission only
		if validator == 0 {
			t.Fatal("no emission")
		}
		cut := mulDiv(validator, uint64(take), 65535)
		rest := validator - cut
		share := mulDiv(rest, other, total)
		if got := h.s.Stake(addr(kOther), addr(hVal)); got != other+share {
			t.Errorf("take %d: nominator stake %d, want %d + %d", take, got, other, share)
		}
		if got := h.s.Stake(addr(kOwner), addr(hVal)); got != owner+validator-share {
			t.Errorf("take %d: owner stake %d, want %d + %d", take, got, owner, validator-share)
		}
		d, _ := h.s.Delegate(addr(hVal))
		last := d.Payouts[len(d.Payouts)-1]
		if len(d.Payouts) != 2 || last.Block != h.s.Height() || last.Paid != rest || last.Stake != total {
			t.Fatalf("take %d: payouts %+v, want the last paid %d on stake %d", take, d.Payouts, rest, total)
		}
		if d.Nominators != 2 || d.ReturnPer1000 != returnPer1000(d.Payouts) || d.ReturnPer1000 == 0 {
			t.Fatalf("take %d: %+v", take, d)
		}
	}
}

// The history keeps the newest MaxPayouts payouts, one per block, oldest
// first; a non-delegate keeps none.
func TestPayoutHistoryBounded(t *testing.T) {
	h, _ := delegateScenario(t, 0)
	h.ok(kRoot, mSudo(1, "tempo", 65535)) // no epoch of its own meanwhile
	for i := range MaxPayouts + 5 {
		h.block()
		h.s.emitThroughHotkey(addr(hVal), 0, uint64(1000+i))
		h.s.emitThroughHotkey(addr(hVal), 7, 10) // same block: adds up
		h.s.emitThroughHotkey(addr(hMin1), 0, 50)
	}
	d, _ := h.s.Delegate(addr(hVal))
	if len(d.Payouts) != MaxPayouts {
		t.Fatalf("%d payouts", len(d.Payouts))
	}
	first := h.s.Height() - MaxPayouts + 1
	for i, p := range d.Payouts {
		wantPaid := uint64(1000+5+i) - mulDiv(uint64(1000+5+i), 11796, 65535) + 10 - mulDiv(10, 11796, 65535)
		if p.Block != first+uint64(i) || p.Paid != wantPaid {
			t.Fatalf("payout %d: %+v, want block %d paid %d", i, p, first+uint64(i), wantPaid)
		}
	}
	if hk := h.s.hotkeys[addr(hMin1)]; len(hk.Payouts) != 0 {
		t.Fatalf("a non-delegate recorded %d payouts", len(hk.Payouts))
	}
	// Results are copies.
	d.Payouts[0].Paid = 1
	if again, _ := h.s.Delegate(addr(hVal)); again.Payouts[0].Paid == 1 {
		t.Fatal("query result aliases the state")
	}
}

// returnPer1000 against a naive big-integer reference.
func TestReturnPer1000(t *testing.T) {
	naive := func(ps []Payout) uint64 {
		sum := new(big.Int)
		for _, p := range ps {
			if p.Stake == 0 {
				continue
			}
			r := new(big.Int).Mul(new(big.Int).SetUint64(p.Paid), big.NewInt(1000*BaseUnitsPerToken))
			sum.Add(sum, r.Quo(r, new(big.Int).SetUint64(p.Stake)))
		}
		if !sum.IsUint64() {
			return ^uint64(0)
		}
		return sum.Uint64()
	}
	// 1,000 tokens of 4,000 earn a quarter of 2 tokens: 0.5 tokens.
	if got := returnPer1000([]Payout{{Paid: 2 * BaseUnitsPerToken, Stake: 4000 * BaseUnitsPerToken}}); got != BaseUnitsPerToken/2 {
		t.Fatalf("got %d", got)
	}
	if got := returnPer1000([]Payout{{Paid: 1 << 62, Stake: 1}}); got != ^uint64(0) {
		t.Fatalf("no saturation: %d", got)
	}
	r := rand.New(rand.NewPCG(1, 2))
	for range 2000 {
		ps := make([]Payout, r.IntN(MaxPayouts+1))
		for i := range ps {
			ps[i] = Payout{Block: uint64(i), Paid: r.Uint64N(1 << (10 + r.IntN(40))), Stake: r.Uint64N(1 << (1 + r.IntN(60)))}
		}
		if got, want := returnPer1000(ps), naive(ps); got != want {
			t.Fatalf("%+v: %d, want %d", ps, got, want)
		}
	}
}

func TestDelegateQueries(t *testing.T) {
	h, opened := delegateScenario(t, 100)
	if _, ok := h.s.Delegate(addr(hMin1)); ok {
		t.Fatal("a non-delegate is a delegate")
	}
	if _, ok := h.s.Delegate(addr(hFree)); ok {
		t.Fatal("an unknown hotkey is a delegate")
	}
	h.ok(kOwner, mDelegate(addr(hMin1), 100))
	list := h.s.Delegates()
	if len(list) != 2 || bytes.Compare(list[0].Hotkey[:], list[1].Hotkey[:]) >= 0 {
		t.Fatalf("list %+v", list)
	}
	d, ok := h.s.Delegate(addr(hVal))
	if !ok || d.Take != 11796 || d.Total != 4_000_000 || d.Nominators != 2 || d.TakeRaisedAt != opened || d.NextTakeRaise != opened+100 || d.Owner != addr(kOwner) || d.Payouts == nil {
		t.Fatalf("delegate %+v", d)
	}
	mine := h.s.Delegations(addr(kOther))
	if len(mine) != 1 || mine[0].Hotkey != addr(hVal) || mine[0].Stake != 3_000_000 || mine[0].TotalStake != 4_000_000 || mine[0].Take != 11796 {
		t.Fatalf("delegations %+v", mine)
	}
	if got := h.s.Delegations(addr(kPoor)); got == nil || len(got) != 0 {
		t.Fatalf("no delegations: %+v", got)
	}
	// kOwner staked on hVal only (hMin1 is a delegate without its stake).
	if got := h.s.Delegations(addr(kOwner)); len(got) != 1 || got[0].Stake != 1_000_000 {
		t.Fatalf("owner's delegations %+v", got)
	}
}

func TestTakeFieldsSurviveReopen(t *testing.T) {
	gen := testGenesis(kRoot, kOwner, kOther)
	gen.Globals.TakeRateLimit = 100
	sh := openStoreHarness(t, gen)
	sh.send(kOwner, mRegisterNetwork("alpha"))
	sh.send(kOwner, mBurned(1, addr(hVal)))
	sh.send(kOwner, mAddStake(addr(hVal), 1_000_000))
	sh.send(kOwner, mDelegate(addr(hVal), 0))
	sh.send(kOwner, mSetTake(addr(hVal), 4000))
	for len(sh.s.hotkeys[addr(hVal)].Payouts) < 2 {
		sh.block()
	}
	want, _ := sh.s.Delegate(addr(hVal))
	sh.reopen()
	got, _ := sh.s.Delegate(addr(hVal))
	if got.Take != 4000 || got.TakeRaisedAt != want.TakeRaisedAt || got.TakeRaisedAt == 0 || len(got.Payouts) != len(want.Payouts) || got.ReturnPer1000 != want.ReturnPer1000 {
		t.Fatalf("after reopen %+v, want %+v", got, want)
	}
	for i := range got.Payouts {
		if got.Payouts[i] != want.Payouts[i] {
			t.Fatalf("payout %d: %+v, want %+v", i, got.Payouts[i], want.Payouts[i])
		}
	}
	// The refusal survives too: a raise inside the limit after reopening.
	height := sh.s.Height() + 1
	res, err := sh.db.ApplyBlock(Block{Height: height, Hash: blockHashFor(height), Txs: [][]byte{sh.tx(kOwner, mSetTake(addr(hVal), 5000))}})
	if err != nil || res.Txs[0].Code != ErrTakeRateLimit.Code {
		t.Fatalf("raise after reopen: %v %+v", err, res.Txs[0])
	}
}

// A hotkey without a take-raise block or payouts encodes as before they
// existed; one with them round-trips; malformed tails are refused.
func TestHotkeyTakeEncoding(t *testing.T) {
	plain := &Hotkey{Owner: addr(kOwner), Delegate: true, Take: 7, Stakes: map[Address]uint64{addr(kOther): 5}, Total: 5}
	enc := plain.encode()
	with := *plain
	with.TakeRaisedAt = 9
	with.Payouts = []Payout{{Block: 10, Paid: 3, Stake: 5}, {Block: 30, Paid: 0, Stake: 8}}
	encWith := with.encode()
	if !bytes.HasPrefix(encWith, enc) {
		t.Fatal("the take fields are not a trailing part")
	}
	var full Hotkey = with
	full.Payouts = make([]Payout, MaxPayouts+1)
	tooMany := full.encode()
	for _, tc := range []struct {
		name string
		b    []byte
		want *Hotkey
	}{
		{"none", enc, plain},
		{"some", encWith, &with},
		{"raise block only", (&Hotkey{Owner: addr(kOwner), Stakes: map[Address]uint64{}, TakeRaisedAt: 4}).encode(), &Hotkey{Owner: addr(kOwner), TakeRaisedAt: 4}},
		{"empty tail", append(append([]byte(nil), enc...), 0, 0), nil},
		{"too many payouts", tooMany, nil},
		{"truncated", encWith[:len(encWith)-1], nil},
		{"trailing garbage", append(append([]byte(nil), encWith...), 1), nil},
	} {
		h, err := decodeHotkey(tc.b)
		if (err == nil) != (tc.want != nil) {
			t.Errorf("%s: err %v", tc.name, err)
			continue
		}
		if tc.want == nil {
			continue
		}
		if h.TakeRaisedAt != tc.want.TakeRaisedAt || len(h.Payouts) != len(tc.want.Payouts) || h.Take != tc.want.Take || h.Total != tc.want.Total {
			t.Errorf("%s: %+v", tc.name, h)
			continue
		}
		for i := range h.Payouts {
			if h.Payouts[i] != tc.want.Payouts[i] {
				t.Errorf("%s: payout %d %+v", tc.name, i, h.Payouts[i])
			}
		}
		if !bytes.Equal(h.encode(), tc.b) {
			t.Errorf("%s: does not re-encode to the same bytes", tc.name)
		}
	}
}
