package neuron

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/libp2p/go-libp2p/core/network"
	"github.com/libp2p/go-libp2p/core/peer"

	"github.com/cybertensor/cybertensor/wallet"
)

// A validator whose rotation reaches each miner less often than
// KeepConnectedWithin lets go of its connection to a miner once the miner
// answered, and connects again before its next turn: it stays connected
// to about the miners its next rounds ask, besides those it gossips with
// (which it keeps), and every miner keeps answering, turn after turn.
// Discovery dials no member the validator would not gossip with, however
// few it gossips with. A validator reaching them more often (the same
// rotation, the default KeepConnectedWithin) keeps every miner connected.
func TestValidatorLetsGoOfMiners(t *testing.T) {
	miners, validators := 16, 3
	colds := testKeys(t, "let go cold", miners+validators)
	c := testChain(t, colds)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	sw := fastSwarm()
	sw.GossipValidators = 1 // a validator gossips with about 5 miners, below TargetPeers
	hot := func(i int) *wallet.PrivateKey { return testKey(t, "let go hot", i) }
	ms, members := startSubnet(ctx, t, c, colds, hot, miners, validators, sw, func(i int, cfg *ValidatorConfig) {
		// A miner's turn every 16 rounds, each 4 blocks of 50 ms.
		cfg.QueryEvery, cfg.Sample = 4, 1
		if i == 0 {
			cfg.KeepConnectedWithin = time.Nanosecond
		}
	})
	minerIDs := map[peer.ID]uint16{}
	for _, m := range ms {
		minerIDs[m.id] = m.uid
	}
	var vs []*Validator
	for _, v := range members {
		vs = append(vs, v.validator)
	}
	// Every miner answers each validator in two of its turns at least:
	// the first connected again after letting go.
	for i, v := range vs[:2] {
		answered := map[uint16]map[int64]bool{}
		waitUntil(t, time.Minute, fmt.Sprintf("every miner to answer validator %d twice", i), func() bool {
			for _, a := range v.LastAnswers() {
				// The retrieval backend knows no passage: the
				// miner answers NOT_FOUND, which it sent.
				if a.Status == "NOT_FOUND" {
					if answered[a.UID] == nil {
						answered[a.UID] = map[int64]bool{}
					}
					answered[a.UID][a.Time] = true
				}
			}
			for _, uid := range minerIDs {
				if len(answered[uid]) < 2 {
					return false
				}
			}
			return true
		})
	}
	keeper := vs[1]
	waitUntil(t, time.Minute, "the validator keeping its miners to be connected to all of them", func() bool {
		for id := range minerIDs {
			if keeper.h.Network().Connectedness(id) != network.Connected {
				return false
			}
		}
		return true
	})
	v := vs[0]
	// Connected to the miners of its next rounds (connectAhead of them,
	// one a round) and the one it asks; the miners it gossips with are
	// kept.
	most := connectAhead + 1
	gossiping := 0
	for id := range minerIDs {
		if v.swarm.gossipsWith(id) {
			gossiping++
		}
	}
	if gossiping == 0 || gossiping == miners {
		t.Fatalf("the validator gossips with %d of %d miners: the test's keys exercise nothing", gossiping, miners)
	}
	others := func() (n int, kept bool) {
		kept = true
		for id := range minerIDs {
			connected := v.h.Network().Connectedness(id) == network.Connected
			switch {
			case v.swarm.gossipsWith(id):
				kept = kept && connected
			case connected:
				n++
			}
		}
		return n, kept
	}
	waitUntil(t, time.Minute, fmt.Sprintf("the validator to be connected to at most %d of the %d miners it does not gossip with, and to the %d it does", most, miners-gossiping, gossiping), func() bool {
		n, kept := others()
		return n <= most && kept
	})
}
