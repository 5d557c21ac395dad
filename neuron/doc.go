// Package neuron runs the two roles of a subnet: a Miner serves the
// subnet's synapses on the query protocol with a backend, and a Validator
// samples miners, scores their answers against tasks it knows the answers
// to, keeps moving averages, and sets weights on chain.
//
// Both are libp2p hosts whose identity is their hotkey, registered on the
// chain (burned registration) with their peer ID and addresses served on
// chain (serve_axon), so peers find each other through the metagraph.
package neuron
