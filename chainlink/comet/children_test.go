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

func setChildren(netuid uint32, parent wallet.Address, children ...chain.Child) *chainpb.Msg {
	list := make([]*chainpb.Child, len(children))
	for i, c := range children {
		list[i] = &chainpb.Child{Hotkey: append([]byte(nil), c.Hotkey[:]...), Proportion: c.Proportion}
	}
	return &chainpb.Msg{Sum: &chainpb.Msg_SetChildren{SetChildren: &chainpb.SetChildren{Netuid: netuid, Hotkey: parent[:], Children: list}}}
}

func setChildkeyTake(netuid uint32, hotkey wallet.Address, take uint32) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetChildkeyTake{SetChildkeyTake: &chainpb.SetChildkeyTake{Netuid: netuid, Hotkey: hotkey[:], Take: take}}}
}

// A parent lends half its stake to a child through a CometBFT node: the
// change is pending with the block it applies at and applies there (the
// localnet genesis' children_cooldown), the child's effective stake and
// parents are read back; refused changes (six children, a cycle, another
// coldkey's hotkey, a take above the maximum or raised too soon) come back
// with their named errors and change nothing.
func TestChildrenThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 90*time.Second)
	defer cancel()
	root, coldkey := key(0), key(1)
	parent, childHK := addrOf(key(3)), addrOf(key(2))
	rs, cs := chainlink.NewSender(c, root), chainlink.NewSender(c, coldkey)
	send := func(s *chainlink.Sender, what string, msg *chainpb.Msg) *chainlink.Receipt {
		t.Helper()
		rec, err := s.Send(ctx, msg)
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
		return rec
	}
	send(rs, "set childkey_take_rate_limit", &chainpb.Msg{Sum: &chainpb.Msg_SudoSetGlobal{SudoSetGlobal: &chainpb.SudoSetGlobal{Name: "childkey_take_rate_limit", Value: 1000}}})
	send(rs, "register the parent", &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: parent[:]}}})
	send(cs, "register the child", &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: childHK[:]}}})
	send(rs, "stake on the parent", &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: parent[:], Amount: 2_000_000}}})

	rec := send(rs, "set children", setChildren(1, parent, chain.Child{Hotkey: childHK, Proportion: 1 << 63}))
	var globals chain.Globals
	if err := c.Query(ctx, "/globals", &globals); err != nil {
		t.Fatal(err)
	}
	applyAt := rec.Height + globals.ChildrenCooldown
	info, err := c.ChildKeys(ctx, 1, parent)
	if err != nil || info.Pending == nil || info.Pending.ApplyAt != applyAt || len(info.Children) != 0 {
		t.Fatalf("pending %+v %v, want apply at %d", info, err, applyAt)
	}
	heads, err := c.SubscribeHeads(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for h := range heads {
		if h.Height >= applyAt {
			break
		}
	}
	if ctx.Err() != nil {
		t.Fatal("no block reached the cooldown")
	}
	info, err = c.ChildKeys(ctx, 1, parent)
	if err != nil || info.Pending != nil || len(info.Children) != 1 || info.Children[0].Hotkey != childHK || info.EffectiveStake != info.Stake-info.Stake/2 {
		t.Fatalf("parent after the cooldown %+v %v", info, err)
	}
	ci, err := c.ChildKeys(ctx, 1, childHK)
	if err != nil || len(ci.Parents) != 1 || ci.Parents[0].Hotkey != parent || ci.EffectiveStake != ci.Stake+info.Stake/2 {
		t.Fatalf("child %+v %v", ci, err)
	}
	if _, err := c.ChildKeys(ctx, 9, parent); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}

	// Refusals, each with its named error.
	six := make([]chain.Child, 6)
	for i := range six {
		six[i] = chain.Child{Hotkey: addrOf(key(10 + i)), Proportion: 1}
	}
	for _, tc := range []struct {
		name   string
		sender *chainlink.Sender
		msg    *chainpb.Msg
		want   *chain.TxError
	}{
		{"six children", rs, setChildren(1, parent, six...), chain.ErrTooManyChildren},
		{"a cycle", cs, setChildren(1, childHK, chain.Child{Hotkey: parent, Proportion: 1}), chain.ErrChildParentCycle},
		{"another coldkey's hotkey", cs, setChildren(1, parent), chain.ErrNonAssociatedColdkey},
		{"take above max_childkey_take", cs, setChildkeyTake(1, childHK, 11797), chain.ErrInvalidChildkeyTake},
	} {
		if _, err := tc.sender.Send(ctx, tc.msg); !errors.Is(err, tc.want) {
			t.Fatalf("%s: %v, want %s", tc.name, err, tc.want.Name)
		}
	}
	send(cs, "set the childkey take", setChildkeyTake(1, childHK, 1000))
	if _, err := cs.Send(ctx, setChildkeyTake(1, childHK, 2000)); !errors.Is(err, chain.ErrChildkeyTakeRateLimit) {
		t.Fatalf("raise inside the rate limit: %v", err)
	}
	after, err := c.ChildKeys(ctx, 1, childHK)
	if err != nil || after.ChildkeyTake != 1000 || len(after.Children) != 0 || after.Pending != nil {
		t.Fatalf("child after the refusals %+v %v", after, err)
	}
	if p, _ := c.ChildKeys(ctx, 1, parent); p.Pending != nil || len(p.Children) != 1 {
		t.Fatalf("parent after the refusals %+v", p)
	}
}
