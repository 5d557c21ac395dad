package gossip

import (
	"fmt"
	"net"
	"time"

	pubsub "github.com/libp2p/go-libp2p-pubsub"
	"github.com/libp2p/go-libp2p/core/peer"
)

// Score sets gossipsub peer scoring (gossipsub v1.1). The scale, as the
// Ethereum consensus clients set theirs: an honest peer earns at most
// about +100 (time in the mesh and first deliveries, capped); invalid
// messages cost quadratically, so that a handful graylists the peer that
// forwarded them; a peer below Graylist has its messages dropped unseen.
type Score struct {
	// Thresholds, all ≤ 0 but AcceptPX and OpportunisticGraft:
	// below Gossip no gossip is exchanged with the peer, below Publish it
	// gets no flood-published messages, below Graylist it is ignored.
	Gossip, Publish, Graylist    float64
	AcceptPX, OpportunisticGraft float64

	// InvalidMessageWeight is the (negative) weight of the square of the
	// count of invalid messages a peer delivered, decaying with
	// InvalidMessageDecay (the time to fall to 1%).
	InvalidMessageWeight float64
	InvalidMessageDecay  time.Duration

	// IPColocationWeight penalizes more than IPColocationThreshold peers
	// on one IP (sybils behind one address), except addresses in
	// IPColocationWhitelist (loopback by default: local networks).
	IPColocationWeight    float64
	IPColocationThreshold int
	IPColocationWhitelist []*net.IPNet
}

// DefaultScore: thresholds −4,000 / −8,000 / −16,000, accept peer exchange
// from peers above 100 and opportunistically graft above 5; each invalid
// message counts −1,000 × count² (5 invalid knowledge messages, or 6
// heartbeats at half the topic weight, graylist), decaying over an hour.
func DefaultScore() Score {
	_, loop4, _ := net.ParseCIDR("127.0.0.0/8")
	_, loop6, _ := net.ParseCIDR("::1/128")
	return Score{
		Gossip: -4000, Publish: -8000, Graylist: -16000,
		AcceptPX: 100, OpportunisticGraft: 5,
		InvalidMessageWeight: -1000, InvalidMessageDecay: time.Hour,
		IPColocationWeight: -50, IPColocationThreshold: 10,
		IPColocationWhitelist: []*net.IPNet{loop4, loop6},
	}
}

// topicWeight is how much each kind counts in a peer's score.
func topicWeight(k Kind) float64 {
	if k == Knowledge {
		return 1
	}
	return 0.5
}

func (s Score) params() (*pubsub.PeerScoreParams, *pubsub.PeerScoreThresholds, error) {
	if !(s.Graylist < s.Publish && s.Publish < s.Gossip && s.Gossip <= 0) || s.AcceptPX < 0 || s.OpportunisticGraft < 0 {
		return nil, nil, fmt.Errorf("gossip: score: need Graylist < Publish < Gossip ≤ 0 ≤ AcceptPX, OpportunisticGraft")
	}
	if s.InvalidMessageWeight >= 0 || s.InvalidMessageDecay < time.Second {
		return nil, nil, fmt.Errorf("gossip: score: InvalidMessageWeight must be negative and InvalidMessageDecay ≥ 1s")
	}
	p := &pubsub.PeerScoreParams{
		Topics:        map[string]*pubsub.TopicScoreParams{},
		TopicScoreCap: 100,
		// No application score yet: registration is checked per message.
		AppSpecificScore:            func(peer.ID) float64 { return 0 },
		AppSpecificWeight:           1,
		IPColocationFactorWeight:    s.IPColocationWeight,
		IPColocationFactorThreshold: max(s.IPColocationThreshold, 1),
		IPColocationFactorWhitelist: s.IPColocationWhitelist,
		// Broken promises (IWANT unanswered) and backoff violations.
		BehaviourPenaltyWeight:    -10,
		BehaviourPenaltyThreshold: 6,
		BehaviourPenaltyDecay:     pubsub.ScoreParameterDecay(10 * time.Minute),
		DecayInterval:             pubsub.DefaultDecayInterval,
		DecayToZero:               pubsub.DefaultDecayToZero,
		RetainScore:               10 * time.Minute,
	}
	t := &pubsub.PeerScoreThresholds{
		GossipThreshold: s.Gossip, PublishThreshold: s.Publish, GraylistThreshold: s.Graylist,
		AcceptPXThreshold: s.AcceptPX, OpportunisticGraftThreshold: s.OpportunisticGraft,
	}
	return p, t, nil
}

// topicParams scores one topic. Mesh delivery rates are not scored: a
// subnet's traffic varies too much for a fixed expected rate, and a wrong
// rate would punish honest peers.
func (s Score) topicParams(k Kind) *pubsub.TopicScoreParams {
	return &pubsub.TopicScoreParams{
		TopicWeight: topicWeight(k),
		// Up to +30 for an hour in the mesh.
		TimeInMeshWeight:  30.0 / 3600,
		TimeInMeshQuantum: time.Second,
		TimeInMeshCap:     3600,
		// Up to +40 for first deliveries, fading over 10 minutes.
		FirstMessageDeliveriesWeight: 1,
		FirstMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(10 * time.Minute),
		FirstMessageDeliveriesCap:    40,
		MeshMessageDeliveriesDecay:   pubsub.ScoreParameterDecay(time.Minute),
		MeshFailurePenaltyDecay:      pubsub.ScoreParameterDecay(time.Minute),
		// count² × weight: a few invalid messages reach the graylist.
		InvalidMessageDeliveriesWeight: s.InvalidMessageWeight,
		InvalidMessageDeliveriesDecay:  pubsub.ScoreParameterDecay(s.InvalidMessageDecay),
	}
}
