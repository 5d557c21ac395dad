package comet

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/wallet"
)

func burnedRegisterMax(netuid uint32, hotkey wallet.Address, maxBurn uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: netuid, Hotkey: hotkey[:], MaxBurn: maxBurn}}}
}

func setWeights(netuid uint32, uids, values []uint32, version uint64) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetWeights{SetWeights: &chainpb.SetWeights{Netuid: netuid, Uids: uids, Values: values, VersionKey: version}}}
}

// Through a CometBFT node: prices are quoted (burn, lock) and a limit
// below the price is refused with the named error; a root member's
// weights move the subnets' emission shares to exactly 1/4 and 3/4; a
// subnet's weights_version_key refuses an older validator's weights.
func TestRootWeightsAndPricesThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	owner, coldkey, hotkey := key(0), key(1), key(2)
	hk := addrOf(hotkey)
	cs := chainlink.NewSender(c, coldkey)

	// Lock cost: a limit one below the quote is refused; the quote pays
	// at most the quote (the cost only decays between blocks).
	lc, err := c.LockCost(ctx)
	if err != nil || lc.Amount == 0 || lc.Subnets != 1 {
		t.Fatalf("lock cost %+v %v", lc, err)
	}
	if _, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: &chainpb.RegisterNetwork{Name: "beta", MaxLock: lc.Amount - 1}}}); !errors.Is(err, chain.ErrLockAboveLimit) {
		t.Fatalf("max_lock below the cost: %v", err)
	}
	if _, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_RegisterNetwork{RegisterNetwork: &chainpb.RegisterNetwork{Name: "beta", MaxLock: lc.Amount}}}); err != nil {
		t.Fatalf("max_lock = the quote: %v", err)
	}
	if sub, err := c.Subnet(ctx, 2); err != nil || sub.Locked > lc.Amount {
		t.Fatalf("subnet 2 %+v %v (quoted %d)", sub, err, lc.Amount)
	}

	// Burn: the same.
	bc, err := c.BurnCost(ctx, 1)
	if err != nil || bc.Burn == 0 || bc.NextAdjustmentBlock <= bc.Block {
		t.Fatalf("burn cost %+v %v", bc, err)
	}
	if _, err := c.BurnCost(ctx, 9); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("burn cost of a missing subnet: %v", err)
	}
	if _, err := cs.Send(ctx, burnedRegisterMax(1, hk, bc.Burn-1)); !errors.Is(err, chain.ErrBurnAboveLimit) {
		t.Fatalf("max_burn below the burn: %v", err)
	}
	if _, err := c.Neuron(ctx, 1, hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("registered despite the refusal: %v", err)
	}
	if _, err := cs.Send(ctx, burnedRegisterMax(1, hk, bc.Burn)); err != nil {
		t.Fatalf("max_burn = the burn: %v", err)
	}

	// Root: the hotkey joins, stakes and weights subnets 1:3.
	if _, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_RootRegister{RootRegister: &chainpb.RootRegister{Hotkey: hk[:]}}}); err != nil {
		t.Fatalf("root register: %v", err)
	}
	if _, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hk[:], Amount: 1_000_000}}}); err != nil {
		t.Fatalf("stake: %v", err)
	}
	hs := chainlink.NewSender(c, hotkey)
	if _, err := hs.Send(ctx, setWeights(0, []uint32{1, 0}, []uint32{1, 1}, 0)); !errors.Is(err, chain.ErrInvalidUID) {
		t.Fatalf("root weights on the root: %v", err)
	}
	if _, err := hs.Send(ctx, setWeights(0, []uint32{1, 2}, []uint32{1, 3}, 0)); err != nil {
		t.Fatalf("root weights: %v", err)
	}
	root, err := c.Metagraph(ctx, 0, false)
	if err != nil || root.N != 1 || root.Hotkeys[0] != hk || len(root.Weights[0]) != 2 {
		t.Fatalf("root metagraph %+v %v", root, err)
	}
	be := testGenesis().Globals.BlockEmission
	for {
		subs, err := c.Subnets(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if len(subs) == 3 && subs[1].EmissionPerBlock == be/4 && subs[2].EmissionPerBlock == be*3/4 {
			break
		}
		select {
		case <-ctx.Done():
			t.Fatalf("emission shares never became 1/4, 3/4: %+v", subs)
		case <-time.After(50 * time.Millisecond):
		}
	}

	// weights_version_key: the owner raises it; an older version is
	// refused, the key itself accepted (a self-weight needs no permit).
	ows := chainlink.NewSender(c, owner)
	if _, err := ows.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: 1, Name: "weights_version_key", Value: 5}}}); err != nil {
		t.Fatalf("set weights_version_key: %v", err)
	}
	n, err := c.Neuron(ctx, 1, hk)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := hs.Send(ctx, setWeights(1, []uint32{uint32(n.UID)}, []uint32{1}, 4)); !errors.Is(err, chain.ErrIncorrectVersionKey) {
		t.Fatalf("version 4 < key 5: %v", err)
	}
	if _, err := hs.Send(ctx, setWeights(1, []uint32{uint32(n.UID)}, []uint32{1}, 5)); err != nil {
		t.Fatalf("version 5 = key: %v", err)
	}
}
