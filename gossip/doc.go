// Package gossip is the neurons' publish/subscribe layer: gossipsub
// (go-libp2p-pubsub) with strict signing, content-addressed message IDs,
// one topic per chain, subnet and kind, validation against the chain, and
// peer scoring set so that peers sending invalid messages are graylisted.
//
// Topics are /cybertensor/<chain-id>/<netuid>/<kind>/1, kind "knowledge"
// (announcements of knowledge objects) or "heartbeat" (neuron status).
// Every message is signed by its author's libp2p key, which is its hotkey,
// so the author is proven without any signature of ours; its data is an
// Envelope (gossip/pb) holding the publication time and the topic's body.
//
// A received message is delivered only if, in order: its data fits the
// size limit and decodes; its timestamp is within the window around the
// local clock (else it is ignored, not punished: clocks drift); its author
// is registered on the subnet in the chain's metagraph; and the topic's
// own check accepts the body (a heartbeat must claim the author's uid).
// A message failing the decode, registration or body check is rejected,
// which costs the peer that forwarded it score; ignored messages cost
// nothing, and so does a copy of the neuron's own message that a peer
// sends back (js-libp2p's gossipsub forwards to the author too): it is
// dropped before pubsub sees it, as pubsub would count it invalid. The
// message ID is the first 20 bytes of
// SHA-256(uvarint(len(topic)) ‖ topic ‖ uvarint(len(from)) ‖ from ‖ data):
// the same data from the same author on one topic is one message however
// many times it is forwarded, while a copy signed by anyone else is another
// message, so a forged copy that arrives first and is rejected cannot make
// the genuine one look already seen. The seen cache outlives the timestamp
// window, so a replay is either a duplicate or too old.
//
// Config.GossipWith restricts gossip to a set of the connected peers: a
// connection kept for other reasons (a validator's queries to a miner
// outside its gossip set) then carries no gossipsub stream and costs none
// of gossipsub's per-peer goroutines.
//
// protocol/SPEC.md §4 states all of this for other implementations.
package gossip
