// Package node runs a neuron's libp2p host: its private key is the wallet's
// hotkey, so the peer ID is the hotkey's and the chain address and the
// network identity are one.
//
// A node speaks standard libp2p only (TCP and QUIC; TLS and noise; yamux,
// our own implementation in node/yamux, wire-compatible with go-yamux;
// identify and ping), bounds its resources with the resource manager's
// explicit limits (scaled from MaxMemory and MaxFD) and its connections
// with the connection manager (low/high water), optionally relays and
// punches holes through NATs, and registers libp2p's Prometheus collectors
// only when given a registerer (metrics cost CPU). It saves its peers to
// peers.json in its data directory, periodically and on Close, and redials
// them at start, so a restarted neuron rejoins without bootstrap. Close
// stops every goroutine the node started.
//
// Importing node registers with go-libp2p, for the whole process, a
// secp256k1 public-key unmarshaller that keeps parsed keys and verifies
// signatures faster, accepting exactly what go-libp2p's own key accepts
// (secp256k1.go): every hotkey is a secp256k1 key, and a neuron verifies
// the author's signature on every gossip message it receives.
package node
