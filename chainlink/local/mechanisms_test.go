package local

import (
	"bytes"
	"context"
	"errors"
	"testing"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

// Mechanisms and a spec change through the embedded chain: the owner's
// SetMechanisms and SetSubnetSpec are pending until the epoch block,
// weights go to each mechanism, and the per-mechanism
// incentive reads back from Mechanisms, the metagraph (JSON and chosen
// columns) and the neuron.
func TestMechanismsThroughLocal(t *testing.T) {
	gen := genesis()
	gen.Subnets = []chain.GenesisSubnet{{Name: "alpha", Owner: addr(key(0))}}
	l, err := New(DefaultTestConfig(gen, chain.YumaEpoch))
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	ctx := context.Background()
	// send signs msg at k's next sequence number and puts it in one block;
	// a refusal is CheckTx's, as a node's mempool gives it.
	send := func(k *wallet.PrivateKey, msg *chainpb.Msg) error {
		t.Helper()
		acc, err := l.Account(ctx, addr(k))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := chain.SignTx(k, l.ChainID(), acc.Sequence, msg)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := l.Broadcast(raw); err != nil {
			return err
		}
		return l.Advance(1)
	}
	must := func(k *wallet.PrivateKey, msg *chainpb.Msg) {
		t.Helper()
		if err := send(k, msg); err != nil {
			t.Fatal(err)
		}
	}
	owner, cold := key(0), key(1)
	val, m1, m2 := key(2), key(3), key(4)
	for _, h := range []*wallet.PrivateKey{val, m1, m2} {
		a := addr(h)
		must(cold, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: a[:]}}})
	}
	va := addr(val)
	must(cold, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: va[:], Amount: 1_000_000}}})

	if err := send(cold, &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{3, 1}}}}); !errors.Is(err, chain.ErrNotSubnetOwner) {
		t.Fatalf("SetMechanisms by a stranger: %v", err)
	}
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{3, 1}}}})
	spec := bytes.Repeat([]byte{9}, 32)
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: spec}}})
	info, err := l.Mechanisms(ctx, 1)
	if err != nil || info.Count() != 1 || len(info.PendingShares) != 2 || info.EffectiveBlock == 0 {
		t.Fatalf("pending mechanisms %+v %v", info, err)
	}
	sub, err := l.Subnet(ctx, 1)
	if err != nil || !bytes.Equal(sub.PendingSpecHash, spec) || sub.SpecEffectiveBlock != info.EffectiveBlock {
		t.Fatalf("pending spec %+v %v", sub, err)
	}
	head, _ := l.Head(ctx)
	if err := l.Advance(int(info.EffectiveBlock - head.Height)); err != nil {
		t.Fatal(err)
	}
	if sub, _ := l.Subnet(ctx, 1); !bytes.Equal(sub.SpecHash, spec) || sub.PendingSpecHash != nil || sub.Mechanisms != 2 {
		t.Fatalf("after the boundary %+v", sub)
	}
	// The validator's permit comes from an epoch; then it weights miner 1
	// on mechanism 0 and miner 2 on mechanism 1.
	for {
		n, _ := l.Neuron(ctx, 1, va)
		if n.ValidatorPermit {
			break
		}
		l.Advance(1)
	}
	weights := func(mech uint32, uid uint32) *chainpb.Msg {
		return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: 1, Uids: []uint32{uid}, Values: []uint32{1}, Mechanism: mech}}}
	}
	must(val, weights(0, 1))
	must(val, weights(1, 2))
	if err := send(val, weights(2, 2)); !errors.Is(err, chain.ErrMechanismDoesNotExist) {
		t.Fatalf("weights on mechanism 2 of 2: %v", err)
	}
	sub, _ = l.Subnet(ctx, 1)
	for {
		if s, _ := l.Subnet(ctx, 1); s.LastEpochBlock != sub.LastEpochBlock {
			break
		}
		l.Advance(1)
	}
	info, err = l.Mechanisms(ctx, 1)
	if err != nil || info.Incentive[0][1] != 65535 || info.Incentive[1][2] != 65535 || info.Incentive[0][2] != 0 {
		t.Fatalf("mechanisms after an epoch %+v %v", info, err)
	}
	m, err := l.Metagraph(ctx, 1, true)
	if err != nil || len(m.MechanismIncentive) != 2 || m.MechanismIncentive[1][2] != 65535 || m.Incentive[1] != 65535*3/4 {
		t.Fatalf("metagraph %+v %v", m, err)
	}
	cols, err := l.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Fields: chain.LiteMetagraphFields})
	if err != nil || len(cols.MechanismIncentive) != 2 || cols.MechanismIncentive[0][1] != 65535 {
		t.Fatalf("metagraph columns %+v %v", cols, err)
	}
	n, err := l.Neuron(ctx, 1, va)
	if mb, ok := n.Mechanism(1); err != nil || !ok || len(mb.Weights) != 1 || mb.Weights[0].UID != 2 {
		t.Fatalf("neuron's mechanism 1 %+v %v", n.Mechanisms, err)
	}
	if _, err := l.Mechanisms(ctx, 7); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
}
