package comet

import (
	"bytes"
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/chainlink/comet/comettest"
	"github.com/cybertensor/cybertensor/wallet"
)

// Mechanisms and a spec change through a CometBFT node running the Yuma
// epoch: the owner's SetMechanisms and SetSubnetSpec are pending until
// the epoch block; a stranger's are refused; the validator's weights on
// each mechanism pay each mechanism's miner, and the per-mechanism
// incentive reads back from Mechanisms, both metagraph paths and the
// neuron; weights on a mechanism the subnet does not run are refused.
func TestMechanismsThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := comettest.Init(t, testGenesis(), comettest.Options{Yuma: true})
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owner, cold := chainlink.NewSender(c, key(0)), chainlink.NewSender(c, key(1))
	val, m1, m2 := key(2), key(3), key(4)
	must := func(s *chainlink.Sender, msg *chainpb.Msg) {
		t.Helper()
		if _, err := s.Send(ctx, msg); err != nil {
			t.Fatal(err)
		}
	}
	for _, h := range []*wallet.PrivateKey{val, m1, m2} {
		a := addrOf(h)
		must(cold, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: a[:]}}})
	}
	va := addrOf(val)
	must(cold, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: va[:], Amount: 1_000_000}}})

	setMechanisms := &chainpb.Msg{Sum: &chainpb.Msg_SetMechanisms{SetMechanisms: &chainpb.SetMechanisms{Netuid: 1, Shares: []uint32{3, 1}}}}
	if _, err := cold.Send(ctx, setMechanisms); !errors.Is(err, chain.ErrNotSubnetOwner) {
		t.Fatalf("SetMechanisms by a stranger: %v", err)
	}
	spec := bytes.Repeat([]byte{9}, 32)
	must(owner, setMechanisms)
	must(owner, &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetSpec{SetSubnetSpec: &chainpb.SetSubnetSpec{Netuid: 1, SpecHash: spec}}})
	sub, err := c.Subnet(ctx, 1)
	if err != nil {
		t.Fatal(err)
	}
	if sub.PendingSpecHash != nil {
		// Pending until the boundary, unless the boundary came between.
		info, err := c.Mechanisms(ctx, 1)
		if err != nil || info.EffectiveBlock != sub.SpecEffectiveBlock {
			t.Fatalf("pending mechanisms %+v (spec effective at %d) %v", info, sub.SpecEffectiveBlock, err)
		}
	}
	waitFor(ctx, t, "the boundary", func() bool {
		s, err := c.Subnet(ctx, 1)
		return err == nil && bytes.Equal(s.SpecHash, spec) && s.PendingSpecHash == nil && s.Mechanisms == 2
	})
	waitFor(ctx, t, "a validator permit", func() bool {
		n, err := c.Neuron(ctx, 1, va)
		return err == nil && n.ValidatorPermit
	})
	vs := chainlink.NewSender(c, val)
	weights := func(mech, uid uint32) *chainpb.Msg {
		return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: 1, Uids: []uint32{uid}, Values: []uint32{1}, Mechanism: mech}}}
	}
	must(vs, weights(0, 1))
	must(vs, weights(1, 2))
	if _, err := vs.Send(ctx, weights(2, 2)); !errors.Is(err, chain.ErrMechanismDoesNotExist) {
		t.Fatalf("weights on mechanism 2 of 2: %v", err)
	}
	var info chain.MechanismsInfo
	waitFor(ctx, t, "per-mechanism incentive", func() bool {
		info, err = c.Mechanisms(ctx, 1)
		return err == nil && info.Incentive[0][1] == 65535 && info.Incentive[1][2] == 65535
	})
	if info.Incentive[0][2] != 0 || info.Incentive[1][1] != 0 {
		t.Fatalf("mechanisms %+v", info)
	}
	m, err := c.Metagraph(ctx, 1, true)
	if err != nil || len(m.MechanismIncentive) != 2 || m.MechanismIncentive[1][2] != 65535 {
		t.Fatalf("metagraph %+v %v", m, err)
	}
	cols, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Fields: chain.LiteMetagraphFields})
	if err != nil || len(cols.MechanismIncentive) != 2 || cols.MechanismIncentive[0][1] != 65535 {
		t.Fatalf("metagraph columns %+v %v", cols, err)
	}
	n, err := c.Neuron(ctx, 1, va)
	if mb, ok := n.Mechanism(1); err != nil || !ok || len(mb.Weights) != 1 || mb.Weights[0].UID != 2 {
		t.Fatalf("neuron's mechanism 1 %+v %v", n.Mechanisms, err)
	}
	var rows [][]chain.Entry
	if err := c.Query(ctx, "/weights/1/1", &rows); err != nil || len(rows) != 3 || len(rows[0]) != 1 {
		t.Fatalf("/weights/1/1: %v %v", rows, err)
	}
	if _, err := c.Mechanisms(ctx, 7); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
}

// waitFor polls cond until it holds or ctx ends.
func waitFor(ctx context.Context, t *testing.T, what string, cond func() bool) {
	t.Helper()
	tick := time.NewTicker(20 * time.Millisecond)
	defer tick.Stop()
	for !cond() {
		select {
		case <-ctx.Done():
			t.Fatalf("waiting for %s: %v", what, ctx.Err())
		case <-tick.C:
		}
	}
}
