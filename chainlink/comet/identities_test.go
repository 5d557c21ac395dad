package comet

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
)

func setIdentity(name, url, description string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetIdentity{SetIdentity: &chainpb.SetIdentity{Name: name, Url: url, Description: description}}}
}

func setSubnetIdentity(netuid uint32, name, url, description string) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetSubnetIdentity{SetSubnetIdentity: &chainpb.SetSubnetIdentity{Netuid: netuid, Name: name, Url: url, Description: description}}}
}

// Identities through a CometBFT node: a coldkey without a registered
// hotkey is refused, then sets one once registered; the subnet's owner
// sets the subnet's, a stranger may not; both read back directly, in the
// subnet list and in the metagraph; refusals (too long, not the owner)
// change nothing and an empty identity removes one.
func TestIdentitiesThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, coldkey, hotkey := key(0), key(1), key(2)
	ownerS, coldS := chainlink.NewSender(c, owner), chainlink.NewSender(c, coldkey)
	hk := addrOf(hotkey)

	if _, err := c.Identity(ctx, addrOf(coldkey)); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before: %v", err)
	}
	if _, err := coldS.Send(ctx, setIdentity("miner", "", "")); !errors.Is(err, chain.ErrNoRegisteredHotkey) {
		t.Fatalf("unregistered coldkey: %v", err)
	}
	if _, err := coldS.Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}}); err != nil {
		t.Fatalf("register: %v", err)
	}
	want := chain.Identity{Name: "miner", URL: "https://miner.example", Description: "serves\nmodels"}
	if _, err := coldS.Send(ctx, setIdentity(want.Name, want.URL, want.Description)); err != nil {
		t.Fatalf("set identity: %v", err)
	}
	if got, err := c.Identity(ctx, addrOf(coldkey)); err != nil || got != want {
		t.Fatalf("identity %+v %v", got, err)
	}
	if _, err := coldS.Send(ctx, setIdentity(strings.Repeat("n", chain.MaxIdentityNameLen+1), "", "")); !errors.Is(err, chain.ErrInvalidIdentity) {
		t.Fatalf("65-byte name: %v", err)
	}

	if _, err := c.SubnetIdentity(ctx, 1); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("subnet before: %v", err)
	}
	if _, err := c.SubnetIdentity(ctx, 9); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
	if _, err := coldS.Send(ctx, setSubnetIdentity(1, "hijack", "", "")); !errors.Is(err, chain.ErrNotSubnetOwner) {
		t.Fatalf("stranger: %v", err)
	}
	sub := chain.Identity{Name: "alpha", URL: "https://alpha.example"}
	if _, err := ownerS.Send(ctx, setSubnetIdentity(1, sub.Name, sub.URL, "")); err != nil {
		t.Fatalf("set subnet identity: %v", err)
	}
	if _, err := ownerS.Send(ctx, setSubnetIdentity(1, "alpha", "", strings.Repeat("d", chain.MaxIdentityDescriptionLen+1))); !errors.Is(err, chain.ErrInvalidIdentity) {
		t.Fatalf("1025-byte description: %v", err)
	}
	if got, err := c.SubnetIdentity(ctx, 1); err != nil || got != sub {
		t.Fatalf("subnet identity %+v %v", got, err)
	}
	list, err := c.Subnets(ctx)
	if err != nil || len(list) != 2 || list[1].Identity == nil || *list[1].Identity != sub || list[0].Identity != nil {
		t.Fatalf("subnets %+v %v", list, err)
	}
	full, err := c.Metagraph(ctx, 1, false)
	if err != nil || full.SubnetIdentity == nil || *full.SubnetIdentity != sub || len(full.IdentityNames) != 1 || full.IdentityNames[0] != "miner" {
		t.Fatalf("full metagraph %+v %v", full, err)
	}
	lite, err := c.Metagraph(ctx, 1, true)
	if err != nil || lite.SubnetIdentity == nil || lite.IdentityNames != nil {
		t.Fatalf("lite metagraph %+v %v", lite, err)
	}

	// An empty identity removes it.
	if _, err := coldS.Send(ctx, setIdentity("", "", "")); err != nil {
		t.Fatalf("remove identity: %v", err)
	}
	if _, err := c.Identity(ctx, addrOf(coldkey)); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("after removal: %v", err)
	}
	if _, err := ownerS.Send(ctx, setSubnetIdentity(1, "", "", "")); err != nil {
		t.Fatalf("remove subnet identity: %v", err)
	}
	if _, err := c.SubnetIdentity(ctx, 1); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("subnet after removal: %v", err)
	}
}
