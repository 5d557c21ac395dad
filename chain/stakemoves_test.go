package chain

import (
	"bytes"
	"errors"
	"math/rand/v2"
	"reflect"
	"testing"

	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/wallet"
)

func mMoveStake(origin, dest Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: origin[:], DestinationHotkey: dest[:], Amount: amount}}}
}
func mTransferStake(dest, hotkey Address, amount uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: dest[:], Hotkey: hotkey[:], Amount: amount}}}
}
func mSwapHotkey(old, nw Address) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: old[:], NewHotkey: nw[:]}}}
}

func ab(k *wallet.PrivateKey) []byte { a := addr(k); return a[:] }

// hNew is a hotkey nobody has used, the target of swaps.
var hNew = testKey(14)

// checkTokenAccounting asserts the invariants of the token accounting:
// each hotkey's total is the sum of its stakes, the totals sum to the
// total stake, and balances, stake and locks sum to the issuance.
func checkTokenAccounting(t *testing.T, s *State) {
	t.Helper()
	var balances, stakes uint64
	for _, acc := range s.accounts {
		balances += acc.Balance
	}
	for h, hk := range s.hotkeys {
		var sum uint64
		for _, v := range hk.Stakes {
			sum += v
		}
		if sum != hk.Total {
			t.Fatalf("hotkey %s: total %d != sum of stakes %d", h, hk.Total, sum)
		}
		stakes += sum
	}
	if stakes != s.g.TotalStake || balances+stakes+lockedTotal(s) != s.g.TotalIssuance {
		t.Fatalf("balances %d + stakes %d (total %d) + locked %d != issuance %d", balances, stakes, s.g.TotalStake, lockedTotal(s), s.g.TotalIssuance)
	}
}

// Every refusal of the three messages: CheckTx names the error and
// changes nothing; in a block, only the signer's sequence moves, so the
// app hash equals that of a state where the same signer sent a different
// refused transaction.
func TestStakeMovesRefused(t *testing.T) {
	delegateVal := func(h *harness) { h.ok(kOwner, mDelegate(addr(hVal), 0)) }
	otherStakes := func(h *harness) {
		delegateVal(h)
		h.ok(kOther, mAddStake(addr(hVal), 500))
	}
	rateLimited := func(h *harness) {
		h.ok(kRoot, mGlobal("tx_rate_limit", 10))
		h.advance(11)
		h.ok(kOwner, mAddStake(addr(hMin1), 100))
	}
	bad := []byte{1, 2, 3}
	cases := []struct {
		name  string
		setup func(h *harness)
		key   *wallet.PrivateKey
		msg   *chainpb.Msg
		want  *TxError
	}{
		{"move bad origin", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: bad, DestinationHotkey: ab(hMin1), Amount: 1}}}, ErrInvalidAddress},
		{"move bad destination", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: ab(hVal), DestinationHotkey: bad, Amount: 1}}}, ErrInvalidAddress},
		{"move to the same hotkey", nil, kOwner, mMoveStake(addr(hVal), addr(hVal), 1), ErrSameHotkey},
		{"move zero", nil, kOwner, mMoveStake(addr(hVal), addr(hMin1), 0), ErrInvalidAmount},
		{"move from an unknown hotkey", nil, kOwner, mMoveStake(addr(hFree), addr(hMin1), 1), ErrNotRegistered},
		{"move to an unknown hotkey", nil, kOwner, mMoveStake(addr(hVal), addr(hFree), 1), ErrNotRegistered},
		{"move to another's non-delegate", otherStakes, kOther, mMoveStake(addr(hVal), addr(hMin1), 1), ErrNonAssociatedColdkey},
		{"move one more than the stake", nil, kOwner, mMoveStake(addr(hVal), addr(hMin1), 1_000_001), ErrNotEnoughStake},
		{"move another's stake", otherStakes, kOther, mMoveStake(addr(hMin1), addr(hVal), 1), ErrNotEnoughStake},
		{"move inside tx_rate_limit", rateLimited, kOwner, mMoveStake(addr(hVal), addr(hMin1), 1), ErrTxRateLimit},
		{"transfer bad coldkey", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: bad, Hotkey: ab(hVal), Amount: 1}}}, ErrInvalidAddress},
		{"transfer bad hotkey", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: ab(kOther), Hotkey: bad, Amount: 1}}}, ErrInvalidAddress},
		{"transfer to oneself", delegateVal, kOwner, mTransferStake(addr(kOwner), addr(hVal), 1), ErrSameColdkey},
		{"transfer zero", delegateVal, kOwner, mTransferStake(addr(kOther), addr(hVal), 0), ErrInvalidAmount},
		{"transfer on an unknown hotkey", nil, kOwner, mTransferStake(addr(kOther), addr(hFree), 1), ErrNotRegistered},
		{"transfer on a non-delegate", nil, kOwner, mTransferStake(addr(kOther), addr(hVal), 1), ErrNonAssociatedColdkey},
		{"transfer one more than the stake", delegateVal, kOwner, mTransferStake(addr(kOther), addr(hVal), 1_000_001), ErrNotEnoughStake},
		{"transfer inside tx_rate_limit", func(h *harness) { delegateVal(h); rateLimited(h) }, kOwner, mTransferStake(addr(kOther), addr(hVal), 1), ErrTxRateLimit},
		{"swap bad old", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: bad, NewHotkey: ab(hNew)}}}, ErrInvalidAddress},
		{"swap bad new", nil, kOwner, &chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: ab(hVal), NewHotkey: bad}}}, ErrInvalidAddress},
		{"swap an unknown hotkey", nil, kOwner, mSwapHotkey(addr(hFree), addr(hNew)), ErrNotRegistered},
		{"swap another's hotkey", nil, kOther, mSwapHotkey(addr(hVal), addr(hNew)), ErrNonAssociatedColdkey},
		{"swap to the same hotkey", nil, kOwner, mSwapHotkey(addr(hVal), addr(hVal)), ErrSameHotkey},
		{"swap to a registered hotkey", nil, kOwner, mSwapHotkey(addr(hVal), addr(hMin1)), ErrHotkeyInUse},
		{"swap to another's hotkey", func(h *harness) {
			h.ok(kOther, mRegisterNetwork("beta"))
			h.ok(kOther, mBurned(2, addr(hFree)))
		}, kOwner, mSwapHotkey(addr(hVal), addr(hFree)), ErrHotkeyInUse},
		{"swap inside tx_rate_limit", rateLimited, kOwner, mSwapHotkey(addr(hVal), addr(hNew)), ErrTxRateLimit},
		{"swap cost above the balance", func(h *harness) {
			h.ok(kRoot, mGlobal("hotkey_swap_cost", h.s.Account(addr(kOwner)).Balance+1))
		}, kOwner, mSwapHotkey(addr(hVal), addr(hNew)), ErrNotEnoughBalanceSwap},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			a, b := scenario(t), scenario(t)
			if tc.setup != nil {
				tc.setup(a)
				tc.setup(b)
			}
			raw := a.tx(tc.key, tc.msg)
			before, beforeHash := snapshot(a.s), a.s.AppHash()
			if err := a.s.CheckTx(raw); !errors.Is(err, tc.want) {
				t.Fatalf("CheckTx: %v, want %v", err, tc.want)
			}
			if !bytes.Equal(a.s.AppHash(), beforeHash) || !reflect.DeepEqual(snapshot(a.s), before) {
				t.Fatal("CheckTx changed the state")
			}
			res := a.block(raw)
			if res.Txs[0].Code != tc.want.Code {
				t.Fatalf("code %d (%s), want %s", res.Txs[0].Code, res.Txs[0].Error, tc.want.Name)
			}
			// b: the same signer's sequence is used by a refused transfer.
			rb := b.block(b.tx(tc.key, mTransfer(addr(kPoor), 0)))
			if rb.Txs[0].Code != ErrInvalidAmount.Code {
				t.Fatalf("control tx: %s", rb.Txs[0].Error)
			}
			if !bytes.Equal(a.s.AppHash(), b.s.AppHash()) {
				t.Fatal("a refused transaction changed the app hash")
			}
			checkTokenAccounting(t, a.s)
		})
	}
}

func TestMoveStake(t *testing.T) {
	h := scenario(t)
	h.ok(kOther, mRegisterNetwork("beta"))
	h.ok(kOther, mBurned(2, addr(hFree)))
	h.ok(kOther, mDelegate(addr(hFree), 0))
	supply := h.s.Supply()
	bal := h.s.Account(addr(kOwner)).Balance
	// All of it, to its own hotkey: the boundary amount.
	r := h.ok(kOwner, mMoveStake(addr(hVal), addr(hMin1), 1_000_000))
	if h.s.Stake(addr(kOwner), addr(hVal)) != 0 || h.s.Stake(addr(kOwner), addr(hMin1)) != 1_000_000 {
		t.Fatalf("stakes %d, %d", h.s.Stake(addr(kOwner), addr(hVal)), h.s.Stake(addr(kOwner), addr(hMin1)))
	}
	if info, _ := h.s.Hotkey(addr(hVal)); info.Total != 0 || len(info.Stakes) != 0 {
		t.Fatalf("origin left with %+v", info)
	}
	if e := r.Events[0]; e.Type != "stake_moved" || e.Attrs["amount"] != "1000000" || e.Attrs["origin_hotkey"] != addr(hVal).String() || e.Attrs["destination_hotkey"] != addr(hMin1).String() {
		t.Fatalf("event %+v", e)
	}
	// To another coldkey's delegate.
	h.ok(kOwner, mMoveStake(addr(hMin1), addr(hFree), 400))
	if h.s.Stake(addr(kOwner), addr(hFree)) != 400 || h.s.Stake(addr(kOwner), addr(hMin1)) != 999_600 {
		t.Fatal("move to a delegate")
	}
	if got := h.s.Supply(); got != supply {
		t.Fatalf("supply %+v, was %+v", got, supply)
	}
	if got := h.s.Account(addr(kOwner)).Balance; got != bal {
		t.Fatalf("balance %d, was %d", got, bal)
	}
	checkTokenAccounting(t, h.s)
}

func TestTransferStake(t *testing.T) {
	h := scenario(t)
	h.ok(kOwner, mDelegate(addr(hVal), 0))
	supply := h.s.Supply()
	r := h.ok(kOwner, mTransferStake(addr(kOther), addr(hVal), 1_000_000))
	if h.s.Stake(addr(kOwner), addr(hVal)) != 0 || h.s.Stake(addr(kOther), addr(hVal)) != 1_000_000 {
		t.Fatal("stake not transferred")
	}
	if info, _ := h.s.Hotkey(addr(hVal)); info.Total != 1_000_000 || info.Owner != addr(kOwner) {
		t.Fatalf("hotkey %+v", info)
	}
	if e := r.Events[0]; e.Type != "stake_transferred" || e.Attrs["destination_coldkey"] != addr(kOther).String() || e.Attrs["amount"] != "1000000" {
		t.Fatalf("event %+v", e)
	}
	// Back to the owner of a non-delegate is allowed too: the owner may
	// always hold stake on its hotkey.
	h.ok(kOwner, mAddStake(addr(hMin1), 50))
	if res := h.block(h.tx(kOwner, mTransferStake(addr(kOther), addr(hVal), 1))); res.Txs[0].Code != ErrNotEnoughStake.Code {
		t.Fatalf("a transfer without stake left: %s", res.Txs[0].Error)
	}
	h.ok(kOther, mTransferStake(addr(kOwner), addr(hVal), 300))
	if h.s.Stake(addr(kOwner), addr(hVal)) != 300 || h.s.Stake(addr(kOther), addr(hVal)) != 999_700 {
		t.Fatal("transfer back")
	}
	if got := h.s.Supply(); got.TotalIssuance != supply.TotalIssuance || got.TotalStake != supply.TotalStake+50 {
		t.Fatalf("supply %+v, was %+v", got, supply)
	}
	checkTokenAccounting(t, h.s)
}

// tx_rate_limit L counts from the coldkey's last staking transaction at
// block b: blocks b+L-1 and b+L are refused, b+L+1 is accepted, for each
// message.
func TestStakeMovesRateLimitBoundary(t *testing.T) {
	const limit = 5
	msgs := map[string]func() *chainpb.Msg{
		"move":     func() *chainpb.Msg { return mMoveStake(addr(hVal), addr(hMin1), 1) },
		"transfer": func() *chainpb.Msg { return mTransferStake(addr(kOther), addr(hVal), 1) },
		"swap":     func() *chainpb.Msg { return mSwapHotkey(addr(hMin2), addr(hNew)) },
	}
	for name, msg := range msgs {
		for _, tc := range []struct {
			after uint64
			want  *TxError
		}{{limit - 1, ErrTxRateLimit}, {limit, ErrTxRateLimit}, {limit + 1, nil}} {
			h := scenario(t)
			h.ok(kOwner, mDelegate(addr(hVal), 0))
			h.ok(kRoot, mGlobal("tx_rate_limit", limit))
			h.advance(limit + 1)
			h.ok(kOwner, mAddStake(addr(hVal), 10))
			last := h.s.Height()
			h.advance(int(tc.after) - 1)
			raw := h.tx(kOwner, msg())
			res := h.block(raw)
			if h.s.Height() != last+tc.after {
				t.Fatalf("applied at %d", h.s.Height())
			}
			code := res.Txs[0].Code
			if (tc.want == nil && code != 0) || (tc.want != nil && code != tc.want.Code) {
				t.Errorf("%s %d blocks after: code %d (%s)", name, tc.after, code, res.Txs[0].Error)
			}
			if tc.want == nil && h.s.Account(addr(kOwner)).LastTxBlock != h.s.Height() {
				t.Errorf("%s does not count as the coldkey's last staking transaction", name)
			}
		}
	}
}

// The fee: a balance of exactly hotkey_swap_cost pays it, one base unit
// less does not; the fee leaves the issuance.
func TestSwapHotkeyFeeBoundary(t *testing.T) {
	for _, tc := range []struct {
		name  string
		short uint64 // how much less than the cost the balance is
		want  *TxError
	}{{"one short", 1, ErrNotEnoughBalanceSwap}, {"exact", 0, nil}} {
		t.Run(tc.name, func(t *testing.T) {
			h := scenario(t)
			const cost = 1_000_000
			h.ok(kRoot, mGlobal("hotkey_swap_cost", cost))
			// kOwner keeps cost - short.
			h.ok(kOwner, mTransfer(addr(kPoor), h.s.Account(addr(kOwner)).Balance-(cost-tc.short)))
			issuance := h.s.Supply().TotalIssuance
			res := h.block(h.tx(kOwner, mSwapHotkey(addr(hMin1), addr(hNew))))
			if tc.want != nil {
				if res.Txs[0].Code != tc.want.Code {
					t.Fatalf("code %d (%s)", res.Txs[0].Code, res.Txs[0].Error)
				}
				if h.s.Account(addr(kOwner)).Balance != cost-tc.short || h.s.Supply().TotalIssuance != issuance {
					t.Fatal("a refused swap was charged")
				}
				return
			}
			if res.Txs[0].Code != 0 {
				t.Fatalf("refused: %s", res.Txs[0].Error)
			}
			if h.s.Account(addr(kOwner)).Balance != 0 || h.s.Supply().TotalIssuance != issuance-cost {
				t.Fatalf("balance %d, issuance %d (was %d)", h.s.Account(addr(kOwner)).Balance, h.s.Supply().TotalIssuance, issuance)
			}
			if e := res.Txs[0].Events[0]; e.Type != "hotkey_swapped" || e.Attrs["burned"] != "1000000" || e.Attrs["new_hotkey"] != addr(hNew).String() {
				t.Fatalf("event %+v", e)
			}
			checkTokenAccounting(t, h.s)
		})
	}
}

// swapScenario: hVal is a delegate (take 1000) registered on subnets 1
// and 2 and on the root network, staked by kOwner and kOther, with an
// axon, a commitment and a weight commit on subnet 1.
func swapScenario(t *testing.T, h *harness) {
	t.Helper()
	h.ok(kOwner, mDelegate(addr(hVal), 1000))
	h.ok(kOther, mAddStake(addr(hVal), 7_000))
	h.ok(kOther, mRegisterNetwork("beta"))
	h.ok(kOwner, mBurned(2, addr(hVal)))
	h.ok(kOwner, mRootRegister(addr(hVal)))
	h.ok(hVal, mServe(1, addr0PeerID(hVal), "/ip4/127.0.0.1/tcp/9"))
	h.ok(hVal, mCommitment(1, addr(hVal), []byte("bafkreimodel")))
	h.ok(kOwner, mSudo(1, "commit_reveal_weights_enabled", 1))
	hash := CommitHash(addr(hVal), 1, []uint16{1}, []uint16{1}, []byte("salt"), 0)
	h.ok(hVal, mCommit(1, hash[:]))
}

func TestSwapHotkeyMovesEverything(t *testing.T) {
	h := scenario(t)
	swapScenario(t, h)
	// No subnet epoch changes neurons or stake around the swap.
	h.ok(kRoot, mSudo(1, "tempo", 65535))
	h.ok(kRoot, mSudo(2, "tempo", 65535))
	old, nw := addr(hVal), addr(hNew)
	infoBefore, _ := h.s.Hotkey(old)
	if !reflect.DeepEqual(infoBefore.Netuids, []uint16{0, 1, 2}) || len(infoBefore.Stakes) != 2 || !infoBefore.Delegate || infoBefore.Take != 1000 {
		t.Fatalf("scenario: %+v", infoBefore)
	}
	neuronsBefore := map[uint16]NeuronInfo{}
	for _, n := range infoBefore.Netuids {
		neuronsBefore[n], _ = h.s.NeuronByHotkey(n, old)
	}
	supply := h.s.Supply()
	bal := h.s.Account(addr(kOwner)).Balance
	cost := h.s.Globals().HotkeySwapCost
	if cost != DefaultGlobals().HotkeySwapCost || cost != 100_000_000 {
		t.Fatalf("hotkey_swap_cost %d", cost)
	}

	h.ok(kOwner, mSwapHotkey(old, nw))

	// The Hotkey record moved whole.
	info, ok := h.s.Hotkey(nw)
	if !ok {
		t.Fatal("new hotkey has no record")
	}
	want := infoBefore
	want.Hotkey = nw
	for i := range want.Stakes {
		want.Stakes[i].Hotkey = nw
	}
	if !reflect.DeepEqual(info, want) {
		t.Fatalf("new hotkey %+v\nwant %+v", info, want)
	}
	if h.s.Stake(addr(kOther), nw) != 7_000 || h.s.Stake(addr(kOwner), nw) != 1_000_000 {
		t.Fatal("stakes")
	}
	// Every registration moved, same uid, same neuron, no axon.
	for netuid, before := range neuronsBefore {
		n, ok := h.s.NeuronByHotkey(netuid, nw)
		if !ok || n.UID != before.UID {
			t.Fatalf("netuid %d: %+v, %v", netuid, n, ok)
		}
		if n.Axon != nil {
			t.Fatalf("netuid %d: the old hotkey's axon moved", netuid)
		}
		want := before
		want.Hotkey, want.Axon = nw, nil
		if !reflect.DeepEqual(n, want) {
			t.Fatalf("netuid %d: neuron %+v\nwant %+v", netuid, n, want)
		}
		if _, ok := h.s.NeuronByHotkey(netuid, old); ok {
			t.Fatalf("netuid %d: old hotkey still registered", netuid)
		}
	}
	if c, ok := h.s.Commitment(1, nw); !ok || string(c.Data) != "bafkreimodel" {
		t.Fatalf("commitment %+v %v", c, ok)
	}
	if n, _ := h.s.NeuronByHotkey(1, nw); n.Commit == nil || n.Commit.Hash != neuronsBefore[1].Commit.Hash {
		t.Fatal("the weight commit did not move")
	}
	m, _ := h.s.Metagraph(0, true)
	if len(m.Hotkeys) != 1 || m.Hotkeys[0] != nw {
		t.Fatalf("root members %v", m.Hotkeys)
	}
	// The old hotkey is left with nothing: no record, no stake, no uid.
	if _, ok := h.s.Hotkey(old); ok {
		t.Fatal("old hotkey keeps a record")
	}
	if _, ok := snapshot(h.s)[keyHotkey(old)]; ok {
		t.Fatal("old hotkey record still stored")
	}
	if h.s.Stake(addr(kOwner), old) != 0 || h.s.Stake(addr(kOther), old) != 0 || h.s.registeredAnywhere(old) {
		t.Fatal("old hotkey keeps stake or a registration")
	}
	// The fee was burned; stake did not change.
	if got := h.s.Account(addr(kOwner)).Balance; got != bal-cost {
		t.Fatalf("balance %d, want %d", got, bal-cost)
	}
	if got := h.s.Supply(); got.TotalIssuance != supply.TotalIssuance-cost || got.TotalStake != supply.TotalStake {
		t.Fatalf("supply %+v, was %+v", got, supply)
	}
	checkTokenAccounting(t, h.s)

	// The new hotkey operates the neurons: it serves its own axon and
	// commits; the old one can be registered afresh by anyone.
	h.ok(hNew, mServe(1, addr0PeerID(hNew), "/ip4/127.0.0.1/tcp/10"))
	h.ok(hNew, mCommitment(2, nw, []byte("second")))
	h.ok(kOther, mBurned(2, old))
	if info, _ := h.s.Hotkey(old); info.Owner != addr(kOther) || info.Total != 0 {
		t.Fatalf("old hotkey re-registered: %+v", info)
	}
	// Emission reaches the stakers through the new hotkey.
	stake := h.s.Stake(addr(kOther), nw)
	h.ok(kRoot, mSudo(1, "tempo", 1))
	h.advance(3)
	if h.s.Stake(addr(kOther), nw) <= stake {
		t.Fatal("no emission through the swapped hotkey")
	}
	checkTokenAccounting(t, h.s)
}

// The deleted record is deleted from the store: a reopened database has
// the same app hash and no old hotkey.
func TestSwapHotkeySurvivesReopen(t *testing.T) {
	sh := openStoreHarness(t, testGenesis(kRoot, kOwner, kOther))
	sh.send(kOwner, mRegisterNetwork("alpha"))
	sh.send(kOwner, mBurned(1, addr(hMin1)))
	sh.send(kOwner, mAddStake(addr(hMin1), 1000))
	sh.send(kOwner, mSwapHotkey(addr(hMin1), addr(hNew)))
	sh.reopen()
	if _, ok := sh.s.Hotkey(addr(hMin1)); ok {
		t.Fatal("the swapped-out hotkey came back")
	}
	if sh.s.Stake(addr(kOwner), addr(hNew)) != 1000 {
		t.Fatal("stake lost over reopen")
	}
}

func TestOverviewAndStakesOf(t *testing.T) {
	h := scenario(t)
	swapScenario(t, h)
	// kOwner owns hVal, hMin1, hMin2; hVal is on 0, 1 and 2.
	ov := h.s.Overview(addr(kOwner))
	if len(ov) != 3 {
		t.Fatalf("overview %+v", ov)
	}
	for i := 1; i < len(ov); i++ {
		if bytes.Compare(ov[i-1].Hotkey[:], ov[i].Hotkey[:]) >= 0 {
			t.Fatal("overview not in address order")
		}
	}
	var val OwnedHotkey
	for _, o := range ov {
		if o.Hotkey == addr(hVal) {
			val = o
		}
	}
	if val.OwnStake != 1_000_000 || val.TotalStake != 1_007_000 || !val.Delegate || val.Take != 1000 || len(val.Registrations) != 3 {
		t.Fatalf("hVal %+v", val)
	}
	for i, r := range val.Registrations {
		n, _ := h.s.NeuronByHotkey(r.Netuid, addr(hVal))
		if r.Netuid != uint16(i) || r.UID != n.UID || r.Stake != 1_007_000 || r.LastUpdate != n.LastUpdate || r.Emission != n.Emission {
			t.Fatalf("registration %d: %+v", i, r)
		}
	}
	if a := val.Registrations[1].Axon; a == nil || a.PeerID != addr0PeerID(hVal) {
		t.Fatalf("axon %+v", a)
	}
	// Results are copies.
	val.Registrations[1].Axon.Multiaddrs[0] = "changed"
	if n, _ := h.s.NeuronByHotkey(1, addr(hVal)); n.Axon.Multiaddrs[0] == "changed" {
		t.Fatal("overview aliases the state")
	}
	if got := h.s.Overview(addr(kPoor)); got == nil || len(got) != 0 {
		t.Fatalf("overview of a stranger %v", got)
	}

	st := h.s.StakesOf(addr(kOther))
	if len(st) != 1 || st[0].Hotkey != addr(hVal) || st[0].Stake != 7_000 || st[0].Owner != addr(kOwner) || st[0].Take != 1000 || !reflect.DeepEqual(st[0].Netuids, []uint16{0, 1, 2}) {
		t.Fatalf("kOther stakes %+v", st)
	}
	h.ok(kOwner, mMoveStake(addr(hVal), addr(hMin2), 10))
	st = h.s.StakesOf(addr(kOwner))
	if len(st) != 2 {
		t.Fatalf("kOwner stakes %+v", st)
	}
	if got := h.s.StakesOf(addr(kPoor)); got == nil || len(got) != 0 {
		t.Fatalf("stakes of a stranger %v", got)
	}
	// After a swap the overview shows the new hotkey, not the old.
	h.ok(kOwner, mSwapHotkey(addr(hVal), addr(hNew)))
	for _, o := range h.s.Overview(addr(kOwner)) {
		if o.Hotkey == addr(hVal) {
			t.Fatal("old hotkey in the overview")
		}
	}
	if st := h.s.StakesOf(addr(kOther)); len(st) != 1 || st[0].Hotkey != addr(hNew) {
		t.Fatalf("kOther after the swap %+v", st)
	}
}

// Random moves, transfers and swaps among stakes and registrations keep
// the token accounting, and two states applying the same blocks agree; a
// state restored from its records and a replay reach the same app hash.
func TestStakeMovesProperty(t *testing.T) {
	colds := []*wallet.PrivateKey{kOwner, kOther, kRoot}
	var hots []*wallet.PrivateKey
	for i := 200; i < 208; i++ {
		hots = append(hots, testKey(i))
	}
	gen := testGenesis(colds...)
	gen.SubnetDefaults.Tempo = 3
	gen.Globals.HotkeySwapCost = 1_000
	a, b := newHarness(t, gen), newHarness(t, gen)
	r := rand.New(rand.NewPCG(3, 4))
	var log []Block
	both := func(txs ...[]byte) *BlockResult {
		blk := Block{Height: a.s.Height() + 1, Hash: blockHashFor(a.s.Height() + 1), Txs: txs}
		ra, err := a.s.ApplyBlock(blk)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := b.s.ApplyBlock(blk)
		if err != nil || !bytes.Equal(ra.AppHash, rb.AppHash) {
			t.Fatalf("block %d: %v, app hashes differ", blk.Height, err)
		}
		log = append(log, blk)
		return ra
	}
	both(a.tx(kOwner, mRegisterNetwork("alpha")))
	both(a.tx(kOther, mRegisterNetwork("beta")))
	done := map[string]int{}
	for range 80 {
		var txs [][]byte
		for range 1 + r.IntN(6) {
			k := colds[r.IntN(len(colds))]
			h1, h2 := addr(hots[r.IntN(len(hots))]), addr(hots[r.IntN(len(hots))])
			var msg *chainpb.Msg
			switch r.IntN(7) {
			case 0:
				msg = mBurned(uint32(1+r.IntN(2)), h1)
			case 1:
				msg = mAddStake(h1, uint64(1+r.IntN(100_000)))
			case 2:
				msg = mDelegate(h1, 0)
			case 3:
				msg = mMoveStake(h1, h2, uint64(1+r.IntN(50_000)))
			case 4:
				msg = mTransferStake(addr(colds[r.IntN(len(colds))]), h1, uint64(1+r.IntN(50_000)))
			case 5:
				// A fresh key, which later transactions use too.
				fresh := testKey(300 + len(hots))
				hots = append(hots, fresh)
				msg = mSwapHotkey(h1, addr(fresh))
			default:
				msg = mRootRegister(h1)
			}
			txs = append(txs, a.tx(k, msg))
		}
		for _, res := range both(txs...).Txs {
			for _, e := range res.Events {
				done[e.Type]++
			}
		}
		checkTokenAccounting(t, a.s)
	}
	for _, typ := range []string{"stake_moved", "stake_transferred", "hotkey_swapped"} {
		if done[typ] == 0 {
			t.Errorf("no %s among %v", typ, done)
		}
	}
	restored, err := restoreState(a.s.Height(), a.s.AppHash(), a.s.allRecords(), stakeEpoch)
	if err != nil || !bytes.Equal(restored.AppHash(), a.s.AppHash()) {
		t.Fatalf("restore: %v", err)
	}
	replay := newHarness(t, gen)
	for _, blk := range log {
		if _, err := replay.s.ApplyBlock(blk); err != nil {
			t.Fatal(err)
		}
	}
	if !bytes.Equal(replay.s.AppHash(), a.s.AppHash()) {
		t.Fatal("replay differs")
	}
}
