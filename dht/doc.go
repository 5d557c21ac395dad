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
package dht
