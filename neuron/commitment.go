package neuron

import (
	"context"
	"fmt"

	"github.com/ipfs/go-cid"

	"github.com/cybertensor/cybertensor/chain"
	"github.com/cybertensor/cybertensor/chain/chainpb"
	"github.com/cybertensor/cybertensor/chainlink"
	"github.com/cybertensor/cybertensor/knowledge"
	"github.com/cybertensor/cybertensor/wallet"
)

// CommitModel commits a knowledge object's CID on netuid for hot, as
// `cybertensor commitments set --cid` does: a SetCommitment signed by the
// hotkey, whose data is the CID's canonical string. It returns the block
// that included it. A model subnet's validators evaluate the object it
// names (tasks: {source: commitments}).
func CommitModel(ctx context.Context, c chainlink.Chain, hot *wallet.PrivateKey, netuid uint16, object cid.Cid) (uint64, error) {
	if object.Type() != knowledge.CodecObject {
		return 0, fmt.Errorf("neuron: committing %s: not a knowledge object's CID", object)
	}
	data := []byte(object.String())
	if len(data) > chain.MaxCommitmentLen {
		return 0, fmt.Errorf("neuron: committing %s: %d bytes, over the chain's %d", object, len(data), chain.MaxCommitmentLen)
	}
	addr := hot.PublicKey().Address()
	msg := &chainpb.Msg{Sum: &chainpb.Msg_SetCommitment{SetCommitment: &chainpb.SetCommitment{Netuid: uint32(netuid), Hotkey: addr[:], Data: data}}}
	rec, err := chainlink.NewSender(c, hot).Send(ctx, msg)
	if err != nil {
		return 0, fmt.Errorf("neuron: committing %s on subnet %d: %w", object, netuid, err)
	}
	return rec.Height, nil
}
