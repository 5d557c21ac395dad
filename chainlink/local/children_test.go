package local

import (
	"context"
	"errors"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

func TestChildKeys(t *testing.T) {
	gen := genesis()
	gen.Globals.ChildrenCooldown = 2
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	parent, child := addr(key(2)), addr(key(3))
	submit := func(k *wallet.PrivateKey, seq uint64, msg *chainpb.Msg) {
		t.Helper()
		raw, _ := chain.SignTx(k, l.ChainID(), seq, msg)
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatal(err)
		}
		if err := l.Advance(1); err != nil {
			t.Fatal(err)
		}
	}
	submit(key(1), 0, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: parent[:]}}})
	submit(key(1), 1, &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: 1, Hotkey: parent[:],
		Children: []*chainpb.Child{{Hotkey: child[:], Proportion: chain.ProportionOne}}}}})
	got, err := l.ChildKeys(ctx, 1, parent)
	if err != nil || got.Pending == nil || len(got.Children) != 0 || got.Pending.Children[0].Hotkey != child {
		t.Fatalf("pending %+v %v", got, err)
	}
	if err := l.Advance(2); err != nil {
		t.Fatal(err)
	}
	got, err = l.ChildKeys(ctx, 1, child)
	if err != nil || len(got.Parents) != 1 || got.Parents[0].Hotkey != parent {
		t.Fatalf("child %+v %v", got, err)
	}
	if _, err := l.ChildKeys(ctx, 7, parent); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
}
