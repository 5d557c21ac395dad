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

func setTake(hotkey wallet.Address, take uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetTake{SetTake: &chainpb.SetTake{Hotkey: hotkey[:], Take: take}}}
}

// A delegate lowers its take through a CometBFT node and reads it back;
// raising it again inside take_rate_limit is refused with the named error
// and changes nothing; after an epoch the node reports its payouts, its
// return per 1,000 tokens and a nominator's delegation.
func TestDelegateTakesThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	nominator, coldkey, hotkey := key(0), key(1), key(2)
	hk := addrOf(hotkey)
	cs := chainlink.NewSender(c, coldkey)
	if _, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := c.Delegate(ctx, hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before opening: %v", err)
	}
	if _, err := cs.Send(ctx, setTake(hk, 100)); !errors.Is(err, chain.ErrNotDelegate) {
		t.Fatalf("set take of a non-delegate: %v", err)
	}
	opened, err := cs.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_BecomeDelegate{BecomeDelegate: &chainpb.BecomeDelegate{Hotkey: hk[:]}}})
	if err != nil {
		t.Fatalf("become delegate: %v", err)
	}
	if _, err := chainlink.NewSender(c, nominator).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hk[:], Amount: 2_000_000_000}}}); err != nil {
		t.Fatalf("nominate: %v", err)
	}
	if _, err := chainlink.NewSender(c, nominator).Send(ctx, setTake(hk, 100)); !errors.Is(err, chain.ErrNonAssociatedColdkey) {
		t.Fatalf("set take by a nominator: %v", err)
	}
	// Lower: applies at once.
	if _, err := cs.Send(ctx, setTake(hk, 5898)); err != nil {
		t.Fatalf("lower: %v", err)
	}
	d, err := c.Delegate(ctx, hk)
	limit := testGenesis().Globals.TakeRateLimit
	if err != nil || d.Take != 5898 || d.TakeRaisedAt != opened.Height || d.NextTakeRaise != opened.Height+limit || d.Owner != addrOf(coldkey) {
		t.Fatalf("after lowering %+v %v (opened at %d)", d, err, opened.Height)
	}
	// Raise inside the limit: refused, the take unchanged.
	if _, err := cs.Send(ctx, setTake(hk, 11796)); !errors.Is(err, chain.ErrTakeRateLimit) {
		t.Fatalf("raise inside take_rate_limit %d: %v", limit, err)
	}
	if _, err := cs.Send(ctx, setTake(hk, 11797)); !errors.Is(err, chain.ErrInvalidTake) {
		t.Fatalf("above max_take: %v", err)
	}
	if again, err := c.Delegate(ctx, hk); err != nil || again.Take != 5898 || again.TakeRaisedAt != d.TakeRaisedAt {
		t.Fatalf("after refusals %+v %v", again, err)
	}
	// An epoch pays the stakers net of the take and is recorded.
	deadline := time.Now().Add(30 * time.Second)
	for len(d.Payouts) == 0 {
		if time.Now().After(deadline) {
			t.Fatalf("no payout recorded: %+v", d)
		}
		time.Sleep(50 * time.Millisecond)
		if d, err = c.Delegate(ctx, hk); err != nil {
			t.Fatal(err)
		}
	}
	if d.ReturnPer1000 == 0 || d.Nominators != 2 {
		t.Fatalf("after an epoch %+v", d)
	}
	list, err := c.Delegates(ctx)
	if err != nil || len(list) != 1 || list[0].Hotkey != hk || list[0].Take != 5898 {
		t.Fatalf("delegates %+v %v", list, err)
	}
	mine, err := c.Delegations(ctx, addrOf(nominator))
	if err != nil || len(mine) != 1 || mine[0].Hotkey != hk || mine[0].Stake <= 2_000_000_000 || mine[0].Take != 5898 {
		t.Fatalf("delegations %+v %v", mine, err)
	}
	if none, err := c.Delegations(ctx, addrOf(key(7))); err != nil || len(none) != 0 {
		t.Fatalf("a stranger's delegations %+v %v", none, err)
	}
}
