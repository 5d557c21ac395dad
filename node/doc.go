// Package node runs a neuron's libp2p host: its private key is the wallet's
// hotkey, so the peer ID is the hotkey's and the chain address and the
// network identity are one.
//
// A node speaks standard libp2p (TCP and QUIC; TLS and noise; yamux, our
// own implementation in node/yamux, wire-compatible with go-yamux; identify
// and ping). Over TCP it first offers /cybertensor/tls-records/1.0.0
// (records.go): libp2p's TLS handshake, then records sealed with
// AEGIS-128L (node/aegis), about three times as fast as TLS's AES-GCM; peers
// that do not offer it get TLS or noise.
//
// It bounds its resources with the resource manager's explicit limits
// (scaled from MaxMemory and MaxFD) and its connections with the
// connection manager (low/high water), optionally relays and punches holes
// through NATs, and registers libp2p's Prometheus collectors only when
// given a registerer (metrics cost CPU). It saves its peers to
// peers.json in its data directory, periodically and on Close, and redials
// them at start, so a restarted neuron rejoins without bootstrap. Close
// stops every goroutine the node started.
//
// The host is assembled from go-libp2p's parts directly (host.go) rather
// than by libp2p.New, whose dependency-injection graph stays alive with the
// host, and its protocol book and connection manager are one-map versions
// of go-libp2p's 256-segment ones (peerstore.go, connmgr.go): an idle host
// holds about a quarter of the memory, which matters where many neurons
// share a process (tests, benchmarks, localnet).
//
// Importing node registers with go-libp2p, for the whole process, a
// secp256k1 public-key unmarshaller that keeps parsed keys and verifies
// signatures faster, accepting exactly what go-libp2p's own key accepts
// (secp256k1.go): every hotkey is a secp256k1 key, and a neuron verifies
// the author's signature on every gossip message it receives.
package node
