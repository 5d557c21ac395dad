package comet

import (
	"context"
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
	"time"

	rpcclient "github.com/cometbft/cometbft/rpc/client"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/abci"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
)

// Through a CometBFT node: the metagraph of chosen columns is read at the
// latest height and, after the state changed, at that earlier height
// again with the same answer; the legacy JSON path honours the height
// too; unknown fields, future heights and missing subnets are refused
// clearly.
func TestMetagraphAtThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	coldkey := key(1)
	register := func(i int) {
		t.Helper()
		hk := addrOf(key(i))
		if _, err := chainlink.NewSender(c, coldkey).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}}); err != nil {
			t.Fatalf("register: %v", err)
		}
	}
	register(10)
	register(11)
	five, err := chain.ParseMetagraphFields("uid,stake,hotkey,coldkey,registered_at")
	if err != nil {
		t.Fatal(err)
	}
	before, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Fields: five})
	if err != nil || before.N != 2 || before.Stake[0] != 0 || before.Hotkeys[1] != addrOf(key(11)) || before.Coldkeys[0] != addrOf(coldkey) || before.Incentive != nil {
		t.Fatalf("latest: %+v %v", before, err)
	}
	pinned := before.Block
	// Change the state: stake on uid 0 and a third neuron.
	hk0 := addrOf(key(10))
	if _, err := chainlink.NewSender(c, coldkey).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_AddStake{AddStake: &chainpb.AddStake{Hotkey: hk0[:], Amount: 5_000_000}}}); err != nil {
		t.Fatal(err)
	}
	register(12)
	after, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Fields: five})
	if err != nil || after.N != 3 || after.Stake[0] != 5_000_000 || after.Block <= pinned {
		t.Fatalf("after the change: %+v %v", after, err)
	}
	again, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Height: pinned, Fields: five})
	if err != nil || !reflect.DeepEqual(again, before) {
		t.Fatalf("at block %d:\n got %+v %v\nwant %+v", pinned, again, err, before)
	}
	// Lite by default; every column equals the legacy full answer's.
	lite, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Height: pinned})
	if err != nil || lite.Weights != nil || lite.Incentive == nil || !reflect.DeepEqual(lite.Fields, chain.LiteMetagraphFields.Names()) {
		t.Fatalf("lite: %+v %v", lite, err)
	}
	// The legacy JSON path answers at a height too.
	res, err := c.rpc.ABCIQueryWithOptions(ctx, "/metagraph/1", nil, rpcclient.ABCIQueryOptions{Height: int64(pinned)})
	var legacy chain.Metagraph
	if err != nil || res.Response.Code != abci.CodeOK || json.Unmarshal(res.Response.Value, &legacy) != nil || legacy.Block != pinned || legacy.N != 2 || res.Response.Height != int64(pinned) {
		t.Fatalf("legacy at %d: %+v %v", pinned, res, err)
	}
	full, err := c.Metagraph(ctx, 1, false)
	all, err2 := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Height: full.Block, Fields: chain.AllMetagraphFields})
	if err != nil || err2 != nil || !reflect.DeepEqual(all.Stake, full.Stake) || !reflect.DeepEqual(all.Weights, full.Weights) || len(all.Axons) != 3 {
		t.Fatalf("all columns %+v %v, full %+v %v", all, err2, full, err)
	}
	// Refusals.
	var he *chain.HeightError
	if _, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 1, Height: after.Block + 1000}); !errors.As(err, &he) || he.Latest < after.Block || !strings.Contains(err.Error(), "ahead of the latest block") {
		t.Fatalf("future height: %v", err)
	}
	if _, err := c.MetagraphAt(ctx, chainlink.MetagraphQuery{Netuid: 7}); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("missing subnet: %v", err)
	}
	res, err = c.rpc.ABCIQuery(ctx, "/metagraph/1?fields=uid,bogus", nil)
	if err != nil || res.Response.Code != abci.CodeBadQuery || !strings.Contains(res.Response.Log, `unknown metagraph field "bogus"; valid fields: uids, hotkeys`) {
		t.Fatalf("unknown field: %+v %v", res, err)
	}
}
