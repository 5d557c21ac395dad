// Package chainlink is the thin bridge between neurons and the chain: a small
// interface for reading the metagraph and submitting signed transactions,
// implemented by an embedded in-process chain and by a CometBFT client.
package chainlink
