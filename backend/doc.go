// Package backend is what a miner answers queries with: a built-in
// retrieval model that needs no download (BM25 over knowledge passages), an
// OpenAI-compatible HTTP backend for any local model server, and an exec
// backend that talks JSON lines to a subprocess. Handlers adapts them to
// the query protocol's synapses.
package backend
