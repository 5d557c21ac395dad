package local

import (
	"context"
	"errors"
	"reflect"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chain/chaintest"
	"github.com/cybertensor/cybertensor/chainlink"
)

// An in-memory chain answers the metagraph only at the latest height; one
// with a data directory also at past heights, from its database.
func TestMetagraphAt(t *testing.T) {
	for _, durable := range []bool{false, true} {
		gen := genesis()
		gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
		cfg := DefaultTestConfig(gen, chaintest.StakeEpoch)
		if durable {
			cfg.DataDir = t.TempDir()
		}
		l, err := New(cfg)
		if err != nil {
			t.Fatal(err)
		}
		ctx := context.Background()
		hk := addr(key(2))
		raw, _ := chain.SignTx(key(1), l.ChainID(), 0, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}})
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatal(err)
		}
		if err := l.Advance(1); err != nil {
			t.Fatal(err)
		}
		stake := chainlink.MetagraphQuery{Netuid: 1, Fields: 1 << 3}
		then, err := l.MetagraphAt(ctx, stake)
		if err != nil || then.N != 1 || then.Stake[0] != 0 || then.Hotkeys != nil || !reflect.DeepEqual(then.Fields, []string{"stake"}) {
			t.Fatalf("durable=%v latest: %+v %v", durable, then, err)
		}
		raw, _ = chain.SignTx(key(1), l.ChainID(), 1, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hk[:], Amount: 777}}})
		if _, err := l.Broadcast(raw); err != nil {
			t.Fatal(err)
		}
		if err := l.Advance(1); err != nil {
			t.Fatal(err)
		}
		if now, err := l.MetagraphAt(ctx, stake); err != nil || now.Stake[0] != 777 {
			t.Fatalf("durable=%v after staking: %+v %v", durable, now, err)
		}
		stake.Height = then.Block
		past, err := l.MetagraphAt(ctx, stake)
		var he *chain.HeightError
		switch {
		case durable && (err != nil || !reflect.DeepEqual(past, then)):
			t.Fatalf("durable past: %+v %v", past, err)
		case !durable && (!errors.As(err, &he) || he.Oldest != then.Block+1):
			t.Fatalf("in-memory past: %v", err)
		}
		if _, err := l.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 9}); !errors.Is(err, chainlink.ErrNotFound) {
			t.Fatalf("missing subnet: %v", err)
		}
		l.Close()
	}
}
