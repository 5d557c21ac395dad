// Package node runs a neuron: a libp2p host whose identity is the wallet's
// hotkey, with its lifecycle, configuration and metrics.
//
// A neuron's peer ID is derived from the same secp256k1 key that signs its
// chain transactions, so the network identity and the on-chain identity are
// one and the same.
package node
