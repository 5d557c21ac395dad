// Package dht provides peer discovery for neurons: a Kademlia DHT under the
// cybertensor protocol prefix (/cybertensor/kad/1.0.0, a network apart from
// IPFS's) in server mode, subnet membership and signed neuron records.
//
// A member of subnet N provides SubnetKey(chain ID, N) and finds the others
// with FindProvidersAsync. It also publishes a Record (peer ID, hotkey,
// netuid, uid, addresses, protocols, expiry) signed by its hotkey under
// /ctneuron/<chain-id>/<netuid>/<peer-id>; the record validator checks the
// signature, that the hotkey is the one inside the peer ID, the expiry, and
// with the chain (Registry) that the hotkey holds the claimed uid. Join
// refreshes both periodically.
//
// # What a peer can make a neuron hold
//
// Anyone can make a key and speak the DHT protocol, so what a DHT server
// keeps for others is bounded. Values are neuron records only (kad-dht's
// /pk/ and /ipns/ namespaces are off), each checked against the chain, so
// they are bounded by the registry; they live RecordTTL. Provider records
// live in a store of ours under kad-dht's provider manager, within
// Config.Providers: registered neurons and unregistered peers each have a
// pool, with a total, a quota per provider and a cap per key, and a record
// past a limit evicts the oldest within it; what unregistered peers send
// never evicts a registered neuron's record. A subnet key's provider record
// is kept only from a hotkey registered on that subnet. Provider records
// live ProviderTTL, a subnet key's MembershipTTL.
package dht
