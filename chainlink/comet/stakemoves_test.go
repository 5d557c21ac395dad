package comet

import (
	"context"
	"errors"
	"reflect"
	"strconv"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Stake moves, a stake transfer and a hotkey swap through a CometBFT
// node: the /stakes and /overview readers follow each one, refusals name
// their rule and change nothing, and the swap burns hotkey_swap_cost.
func TestStakeMovesAndSwapThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	other, cold := addrOf(key(0)), addrOf(key(1))
	h1, h2, hNew := addrOf(key(2)), addrOf(key(3)), addrOf(key(4))
	cs := chainlink.NewSender(c, key(1))
	send := func(what string, msg *chainpb.Msg) *chainlink.Receipt {
		t.Helper()
		rec, err := cs.Send(ctx, msg)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rec
	}
	// No epoch pays emission into stake or issuance during the test.
	if _, err := chainlink.NewSender(c, key(0)).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: 1, Name: "tempo", Value: 65535}}}); err != nil {
		t.Fatalf("set tempo: %v", err)
	}
	for _, h := range []wallet.Address{h1, h2} {
		send("register", &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: h[:]}}})
	}
	send("delegate", &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: &chainpb.BecomeDelegate{Hotkey: h1[:]}}})
	send("stake", &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: h1[:], Amount: 10_000}}})
	send("move", &chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: h1[:], DestinationHotkey: h2[:], Amount: 4_000}}})
	send("transfer", &chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: other[:], Hotkey: h1[:], Amount: 1_000}}})

	stakes, err := c.StakesOf(ctx, cold)
	if err != nil || len(stakes) != 2 {
		t.Fatalf("stakes %+v %v", stakes, err)
	}
	for _, e := range stakes {
		if want := map[wallet.Address]uint64{h1: 5_000, h2: 4_000}[e.Hotkey]; e.Stake != want {
			t.Fatalf("stake entry %+v, want %d", e, want)
		}
	}
	theirs, err := c.StakesOf(ctx, other)
	if err != nil || len(theirs) != 1 || theirs[0].Hotkey != h1 || theirs[0].Stake != 1_000 || !theirs[0].Delegate || theirs[0].Owner != cold {
		t.Fatalf("the receiver's stakes %+v %v", theirs, err)
	}

	// Refusals name their rule and move nothing.
	for _, tc := range []struct {
		msg  *chainpb.Msg
		want *chain.TxError
	}{
		{&chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: h1[:], DestinationHotkey: h1[:], Amount: 1}}}, chain.ErrSameHotkey},
		{&chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: h1[:], DestinationHotkey: h2[:], Amount: 5_001}}}, chain.ErrNotEnoughStake},
		{&chainpb.Msg{Sum: &chainpb.Msg_TransferStake{TransferStake: &chainpb.TransferStake{DestinationColdkey: cold[:], Hotkey: h1[:], Amount: 1}}}, chain.ErrSameColdkey},
		{&chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: h1[:], NewHotkey: h2[:]}}}, chain.ErrHotkeyInUse},
	} {
		if _, err := cs.Send(ctx, tc.msg); !errors.Is(err, tc.want) {
			t.Fatalf("%v: %v, want %s", tc.msg, err, tc.want.Name)
		}
	}
	if again, _ := c.StakesOf(ctx, cold); !reflect.DeepEqual(again, stakes) {
		t.Fatalf("after refusals %+v, was %+v", again, stakes)
	}

	var supply chain.Supply
	if err := c.Query(ctx, "/supply", &supply); err != nil {
		t.Fatal(err)
	}
	acc, err := c.Account(ctx, cold)
	if err != nil {
		t.Fatal(err)
	}
	rec := send("swap", &chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: h1[:], NewHotkey: hNew[:]}}})
	cost := chain.DefaultGlobals().HotkeySwapCost
	var burned string
	for _, e := range rec.Events {
		if e.Type == "hotkey_swapped" {
			burned = e.Attrs["burned"]
		}
	}
	if burned != strconv.FormatUint(cost, 10) {
		t.Fatalf("swap events %+v", rec.Events)
	}
	var after chain.Supply
	if err := c.Query(ctx, "/supply", &after); err != nil {
		t.Fatal(err)
	}
	if after.TotalIssuance != supply.TotalIssuance-cost || after.TotalStake != supply.TotalStake {
		t.Fatalf("supply %+v, was %+v", after, supply)
	}
	if acc2, _ := c.Account(ctx, cold); acc2.Balance != acc.Balance-cost {
		t.Fatalf("balance %d, was %d", acc2.Balance, acc.Balance)
	}
	ov, err := c.Overview(ctx, cold)
	if err != nil || len(ov) != 2 {
		t.Fatalf("overview %+v %v", ov, err)
	}
	for _, o := range ov {
		if o.Hotkey == h1 {
			t.Fatal("the swapped-out hotkey is listed")
		}
		if o.Hotkey == hNew && (o.OwnStake != 5_000 || o.TotalStake != 6_000 || !o.Delegate || len(o.Registrations) != 1 || o.Registrations[0].Netuid != 1 || o.Registrations[0].UID != 0) {
			t.Fatalf("new hotkey %+v", o)
		}
	}
	var hk chain.HotkeyInfo
	if err := c.Query(ctx, "/hotkey/"+h1.String(), &hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("old hotkey: %+v %v", hk, err)
	}
	if n, err := c.Neuron(ctx, 1, hNew); err != nil || n.UID != 0 || n.Coldkey != cold {
		t.Fatalf("neuron of the new hotkey %+v %v", n, err)
	}
	if theirs, _ := c.StakesOf(ctx, other); len(theirs) != 1 || theirs[0].Hotkey != hNew || theirs[0].Stake != 1_000 {
		t.Fatalf("the receiver's stake after the swap %+v", theirs)
	}
}
