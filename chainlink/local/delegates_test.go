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

// The delegate readers: a registered hotkey is no delegate until opened;
// then Delegate, Delegates and Delegations see its take, stake and
// payouts, and a raise inside take_rate_limit is refused.
func TestDelegates(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	owner, nominator := key(1), key(0)
	hk := addr(key(2))
	seq := map[wallet.Address]uint64{}
	submit := func(k *wallet.PrivateKey, msg *chainpb.Msg) error {
		t.Helper()
		raw, _ := chain.SignTx(k, l.ChainID(), seq[addr(k)], msg)
		seq[addr(k)]++
		if _, err := l.Broadcast(raw); err != nil {
			return err
		}
		return l.Advance(1)
	}
	must := func(k *wallet.PrivateKey, msg *chainpb.Msg) {
		t.Helper()
		if err := submit(k, msg); err != nil {
			t.Fatal(err)
		}
	}
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}})
	if _, err := l.Delegate(ctx, hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before opening: %v", err)
	}
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: &chainpb.BecomeDelegate{Hotkey: hk[:]}}})
	must(nominator, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hk[:], Amount: 5_000_000_000}}})
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: hk[:], Take: 1000}}})
	if err := submit(owner, &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: hk[:], Take: 2000}}}); !errors.Is(err, chain.ErrTakeRateLimit) {
		t.Fatalf("raise inside the limit: %v", err)
	}
	if err := l.Advance(2 * int(gen.SubnetDefaults.Tempo)); err != nil {
		t.Fatal(err)
	}
	d, err := l.Delegate(ctx, hk)
	// The owner earned the take into stake: two nominators.
	if err != nil || d.Take != 1000 || d.Total < 5_000_000_000 || d.Nominators != 2 || len(d.Payouts) == 0 || d.ReturnPer1000 == 0 {
		t.Fatalf("delegate %+v %v", d, err)
	}
	list, err := l.Delegates(ctx)
	if err != nil || len(list) != 1 || list[0].Hotkey != hk || list[0].ReturnPer1000 != d.ReturnPer1000 {
		t.Fatalf("list %+v %v", list, err)
	}
	mine, err := l.Delegations(ctx, addr(nominator))
	if err != nil || len(mine) != 1 || mine[0].Hotkey != hk || mine[0].Stake <= 5_000_000_000 || mine[0].TotalStake != d.Total || mine[0].Take != 1000 {
		t.Fatalf("delegations %+v %v", mine, err)
	}
	if none, err := l.Delegations(ctx, addr(key(5))); err != nil || len(none) != 0 {
		t.Fatalf("a stranger's delegations %+v %v", none, err)
	}
}
