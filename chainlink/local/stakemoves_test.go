package local

import (
	"context"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/wallet"
)

// The Overview and StakesOf readers see a registration, a stake move and
// a hotkey swap.
func TestOverviewAndStakesOf(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	cold, h1, h2, h3 := addr(key(1)), addr(key(2)), addr(key(3)), addr(key(4))
	seq := uint64(0)
	submit := func(msg *chainpb.Msg) {
		t.Helper()
		raw, _ := chain.SignTx(key(1), l.ChainID(), seq, msg)
		seq++
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatal(err)
		}
		if err := l.Advance(1); err != nil {
			t.Fatal(err)
		}
	}
	if ov, err := l.Overview(ctx, cold); err != nil || len(ov) != 0 {
		t.Fatalf("empty overview %v %v", ov, err)
	}
	for _, h := range []wallet.Address{h1, h2} {
		submit(&chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: h[:]}}})
	}
	submit(&chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: h1[:], Amount: 1000}}})
	submit(&chainpb.Msg{Sum: &chainpb.Msg_MoveStake{MoveStake: &chainpb.MoveStake{OriginHotkey: h1[:], DestinationHotkey: h2[:], Amount: 400}}})
	st, err := l.StakesOf(ctx, cold)
	if err != nil || len(st) != 2 {
		t.Fatalf("stakes %+v %v", st, err)
	}
	for _, e := range st {
		if want := map[wallet.Address]uint64{h1: 600, h2: 400}[e.Hotkey]; e.Stake != want || e.Owner != cold {
			t.Fatalf("stake entry %+v", e)
		}
	}
	submit(&chainpb.Msg{Sum: &chainpb.Msg_SwapHotkey{SwapHotkey: &chainpb.SwapHotkey{OldHotkey: h1[:], NewHotkey: h3[:]}}})
	ov, err := l.Overview(ctx, cold)
	if err != nil || len(ov) != 2 {
		t.Fatalf("overview %+v %v", ov, err)
	}
	for _, o := range ov {
		if o.Hotkey == h1 {
			t.Fatal("the swapped-out hotkey is listed")
		}
		if o.Hotkey == h3 && (o.OwnStake != 600 || len(o.Registrations) != 1 || o.Registrations[0].UID != 0) {
			t.Fatalf("new hotkey %+v", o)
		}
	}
}
