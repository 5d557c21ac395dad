// Package protocol defines the wire formats and stream protocols neurons use
// to talk to each other: queries between validators and miners, and
// knowledge transfer. The normative description is protocol/SPEC.md.
//
// # What a caller can make a server hold
//
// Anyone can make a key and open query streams to a neuron, so the
// [Server] bounds what a caller it does not serve can cost it:
//
//   - It reads a request's short fields (at most about 600 bytes), learns
//     the netuid, and checks the caller (registered, MinStake) before it
//     reads the body. A refused caller is answered FORBIDDEN without a
//     receipt, the rest of its frame is discarded as it arrives, and the
//     stream ends.
//   - A request's buffer grows as its bytes arrive, and what it holds is
//     reserved in the stream's resource scope (at low priority for callers
//     that are not registered, so they can take at most about 40% of any
//     resource manager limit).
//   - The request bytes held are bounded per peer (PeerRequestBytes) and
//     in total (RequestBytes), of which unregistered callers, served only
//     with AllowUnregistered, may hold half.
//   - Every request is read within ReadTimeout of its first byte;
//     IdleTimeout bounds only the wait for that byte.
//   - Receipts are signed only for answers a handler gave.
//
// # Sharing a server by stake
//
// MaxConcurrent handlers run at once; other requests wait, highest caller
// stake first. With ServerConfig.ShareByStake (the default) each caller
// with requests queued or running has a share of the slots proportional
// to its stake (at least one, leaving one for each other caller): a freed
// slot goes to the first waiting caller under its share, and a full queue
// sheds first the latest requests of callers holding more than their
// share of it. So one high-stake caller (a gateway) flooding a miner
// cannot keep the validators that score it waiting. SPEC.md §2.4.
package protocol
