// Package node runs a neuron's libp2p host: its private key is the wallet's
// hotkey, so the peer ID is the hotkey's and the chain address and the
// network identity are one.
//
// A node speaks standard libp2p (TCP and QUIC; TLS and noise; yamux, our
// own implementation in node/yamux, wire-compatible with go-yamux; identify
// and ping). Over TCP it first offers /cybertensor/tls-records/2.0.0
// (records.go): libp2p's TLS handshake, then records sealed with
// AEGIS-128L (node/aegis), about three times as fast as TLS's AES-GCM; peers
// that do not offer it get TLS or noise.
//
// It bounds its resources with the resource manager's explicit limits
// (scaled from MaxMemory and MaxFD) and its connections with the
// connection manager (low/high water). Anyone can make a key and dial a
// neuron, so once told who is registered on the chain (SetRegistered; the
// neuron package tells it the subnet's hotkeys) it holds to this: what a
// peer that is not registered can make it hold is bounded per peer and in
// total, and registered neurons keep a reserved share of every limit
// (admission.go: an unregistered peer gets one inbound connection, 16
// inbound streams and 8 MiB; together such peers hold at most half the
// inbound connections, and at most 8 from one address, the one idle
// longest giving way to a newcomer; registered peers are protected from
// trims). Keys are free, addresses are not: only 127.0.0.1 and ::1 are
// exempt from go-libp2p's limits per address (addresslimits.go), so the
// rest of 127.0.0.0/8 plays the internet in tests. The protocols' servers
// bound what they hold per peer on top of that, and stop reading what
// they refuse (tests/hostile floods a running network six ways at once).
//
// It optionally relays and punches holes through NATs, and registers
// libp2p's Prometheus collectors only when given a registerer (metrics cost
// CPU). It saves its peers to peers.json in its data directory,
// periodically and on Close, and redials them at start, so a restarted
// neuron rejoins without bootstrap. Close stops every goroutine the node
// started.
//
// The host is assembled from go-libp2p's parts directly (host.go) rather
// than by libp2p.New, whose dependency-injection graph stays alive with the
// host, and its protocol book and connection manager are one-map versions
// of go-libp2p's 256-segment ones (peerstore.go, connmgr.go): an idle host
// holds about a quarter of the memory, which matters where many neurons
// share a process (tests, benchmarks, localnet).
//
// Secp256k1 public keys (every hotkey; gossip authors taken from peer
// IDs, TLS certificates, signed records) are parsed by go-libp2p's own
// code. When cgo is available, node registers for the whole process an
// unmarshaller whose key is go-libp2p's (same parse, Raw, Type and Equals)
// but verifies with bitcoin-core's libsecp256k1 (go-ethereum's vendored
// copy) instead of decred's pure-Go secp256k1: 32 µs against 119 µs a
// verification, and our router's CPU per gossip message about a quarter
// lower at 1,000 hosts. It accepts exactly what go-libp2p accepts: the
// signature is parsed by decred's strict DER parser as go-libp2p does,
// and a high s is replaced by the equivalent n−s, which libsecp256k1
// alone would refuse. A differential test and a fuzz target against
// go-libp2p's key, go-libp2p's own key tests, and known answers from
// OpenSSL and Python's cryptography check it (secp256k1.go). Without cgo
// nothing is registered and go-libp2p's code runs. Caching parsed keys was
// measured and not kept: it saves only the point decompression, about 7%
// of a parse and verification.
//
// # Replacing a standard part
//
// node replaces some standard go-libp2p parts with its own for speed: the
// muxer (node/yamux, for go-yamux), the security transport of records.go
// (for libp2p's TLS records), the cipher under it (node/aegis), the
// secp256k1 verifier (libsecp256k1 for decred's), the host's protocol book
// and connection manager. Anyone can make a key and dial a
// neuron, so a replaced part is kept only if it keeps every protection of
// the part it replaces:
//
//   - It passes the replaced library's own test suite: go-libp2p's muxer
//     suite (node/yamux/conformance_test.go), the transport tests for the
//     security transport (transport_suite_test.go), run against the original
//     too.
//   - It passes the hostile-peer suite (node/yamux/yamuxtest) run against
//     it and the original in the same test (node/yamux/hostile_test.go over
//     TCP, hostile_test.go over the record transport): ping, SYN and
//     window-update floods from a peer that never reads, window violations,
//     stalls mid-frame, giant and truncated frames, many streams never read.
//     Its heap grows no more than the original's plus a small constant,
//     what it holds is charged to the resource manager, deadlines hold in
//     every state, and a protocol violation closes the session.
//   - Its known answers come from an independent implementation (AEGIS-128L:
//     libsodium's, node/aegis/testdata; secp256k1 verification: OpenSSL's
//     and Python's cryptography), beyond its specification's vectors.
//   - Every decoder of bytes from a peer has a fuzz target; .ci/fuzz runs
//     them all for a fixed time (docs/fuzzing.md).
//   - It is worth it: a benchmark in BENCHMARKS.md shows the gain, measured
//     in the same run as the original.
//
// A part that cannot meet all of these goes, and the original returns
// (go-yamux in node.New, libp2p's TLS): speed never buys away safety.
package node
