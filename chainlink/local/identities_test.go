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

func TestIdentities(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chaintest.StakeEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
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
	hk := addr(key(2))
	if _, err := l.Identity(ctx, addr(key(1))); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before: %v", err)
	}
	if _, err := l.SubnetIdentity(ctx, 1); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("subnet before: %v", err)
	}
	submit(key(1), 0, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}})
	submit(key(1), 1, &chainpb.Msg{Sum: &chainpb.Msg_SetIdentity{SetIdentity: &chainpb.SetIdentity{Name: "miner one", Url: "https://one.example"}}})
	submit(key(0), 0, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetIdentity{SetSubnetIdentity: &chainpb.SetSubnetIdentity{Netuid: 1, Name: "alpha", Description: "the first"}}})
	if id, err := l.Identity(ctx, addr(key(1))); err != nil || id != (chain.Identity{Name: "miner one", URL: "https://one.example"}) {
		t.Fatalf("identity %+v %v", id, err)
	}
	if id, err := l.SubnetIdentity(ctx, 1); err != nil || id != (chain.Identity{Name: "alpha", Description: "the first"}) {
		t.Fatalf("subnet identity %+v %v", id, err)
	}
	if _, err := l.SubnetIdentity(ctx, 7); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
	if list, err := l.Subnets(ctx); err != nil || list[1].Identity == nil || list[1].Identity.Name != "alpha" {
		t.Fatalf("subnets %+v %v", list, err)
	}
	if m, err := l.Metagraph(ctx, 1, false); err != nil || m.SubnetIdentity == nil || len(m.IdentityNames) != 1 || m.IdentityNames[0] != "miner one" {
		t.Fatalf("metagraph %+v %v", m, err)
	}
}
