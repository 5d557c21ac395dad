// Package neuron runs the two roles of a subnet: a Miner serves the
// subnet's synapses on the query protocol — text.generate with a backend,
// storage.prove from the knowledge objects it replicates, compute.run by
// doing the job — and a Validator samples miners, scores their answers to
// tasks it can check (questions whose answers it knows, storage challenges
// on objects it holds, compute jobs it verifies cheaply; see subnet.Task),
// keeps moving averages, and sets weights on chain. SpecMinerConfig and
// SpecValidatorConfig run a subnet spec (e.g. subnet.Builtin("storage")).
//
// Both are libp2p hosts whose identity is their hotkey, registered on the
// chain (burned registration) with their peer ID and addresses served on
// chain (serve_axon), so peers find each other through the metagraph.
package neuron
