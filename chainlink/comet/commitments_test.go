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

func setCommitment(netuid uint32, hotkey wallet.Address, data []byte) *chainpb.Msg {
	return &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: netuid, Hotkey: hotkey[:], Data: data}}}
}

// A hotkey commits through a CometBFT node: the commitment is read back
// one by one, as a subnet's list and in the full metagraph; a second one
// inside the subnet's commitment_rate_limit is refused with the named
// error and changes nothing.
func TestCommitmentsThroughNode(t *testing.T) {
	if testing.Short() {
		t.Skip("runs a CometBFT node")
	}
	node := initNode(t)
	node.Start(t)
	c := dial(t, node.URL)
	ctx, cancel := context.WithTimeout(context.Background(), 60*time.Second)
	defer cancel()
	owner, coldkey, hotkey := key(0), key(1), key(2)
	hk := addrOf(hotkey)
	if _, err := chainlink.NewSender(c, owner).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_SudoSetHyperparam{SudoSetHyperparam: &chainpb.SudoSetHyperparam{Netuid: 1, Name: "commitment_rate_limit", Value: 1000}}}); err != nil {
		t.Fatalf("set commitment_rate_limit: %v", err)
	}
	if _, err := chainlink.NewSender(c, coldkey).Send(ctx, &chainpb.Msg{Sum: &chainpb.Msg_BurnedRegister{BurnedRegister: &chainpb.BurnedRegister{Netuid: 1, Hotkey: hk[:]}}}); err != nil {
		t.Fatalf("register: %v", err)
	}
	if _, err := c.Commitment(ctx, 1, hk); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("before committing: %v", err)
	}
	hs := chainlink.NewSender(c, hotkey)
	// The coldkey may not commit for its hotkey.
	if _, err := chainlink.NewSender(c, coldkey).Send(ctx, setCommitment(1, hk, []byte("x"))); !errors.Is(err, chain.ErrSignerNotHotkey) {
		t.Fatalf("coldkey-signed: %v", err)
	}
	cid := []byte("bafkreihdwdcefgh4dqkjv67uzcmw7ojee6xedzdetojuzjevtenxquvyku")
	rec, err := hs.Send(ctx, setCommitment(1, hk, cid))
	if err != nil {
		t.Fatalf("commit: %v", err)
	}
	got, err := c.Commitment(ctx, 1, hk)
	if err != nil || string(got.Data) != string(cid) || got.Block != rec.Height || got.Hotkey != hk || got.UID != 0 {
		t.Fatalf("commitment %+v %v (included at %d)", got, err, rec.Height)
	}
	list, err := c.Commitments(ctx, 1)
	if err != nil || len(list) != 1 || string(list[0].Data) != string(cid) {
		t.Fatalf("list %+v %v", list, err)
	}
	if _, err := c.Commitments(ctx, 9); !errors.Is(err, chainlink.ErrNotFound) {
		t.Fatalf("list of a missing subnet: %v", err)
	}
	full, err := c.Metagraph(ctx, 1, false)
	if err != nil || len(full.Commitments) != 1 || full.Commitments[0] == nil || string(full.Commitments[0].Data) != string(cid) {
		t.Fatalf("full metagraph %+v %v", full, err)
	}
	lite, err := c.Metagraph(ctx, 1, true)
	if err != nil || lite.Commitments != nil {
		t.Fatalf("lite metagraph commitments %+v %v", lite.Commitments, err)
	}
	// Too soon: refused with the named error, the commitment unchanged.
	if _, err := hs.Send(ctx, setCommitment(1, hk, []byte("model:v2"))); !errors.Is(err, chain.ErrCommitmentRateLimit) {
		t.Fatalf("second commitment: %v", err)
	}
	if _, err := hs.Send(ctx, setCommitment(1, hk, make([]byte, chain.MaxCommitmentLen+1))); !errors.Is(err, chain.ErrInvalidCommitment) {
		t.Fatalf("513 bytes: %v", err)
	}
	if again, _ := c.Commitment(ctx, 1, hk); string(again.Data) != string(cid) || again.Block != got.Block {
		t.Fatalf("after refusals %+v", again)
	}
}
