// Package knowledge is the neurons' shared library: content-addressed,
// signed knowledge objects that neurons publish, find, fetch, verify and
// search.
//
// # Objects
//
// An object is a signed header (title, tags, media type, netuid, links to
// other objects, author hotkey, time) naming a body. The body is chunked
// exactly as "ipfs add --cid-version=1" does with default settings (256 KiB
// fixed-size chunks, raw leaves, a balanced dag-pb UnixFS DAG of at most 174
// links per node, CIDv1, sha2-256), so a body's CID is the one IPFS tools
// compute for the same bytes. The object itself is one block, an encoded
// pb.Object (header bytes and the hotkey's signature over them), addressed
// by a CIDv1 with the protobuf multicodec (0x50). protocol/SPEC.md section 5
// is the normative description.
//
// # Store
//
// Open keeps blocks and an index of roots in one bbolt file in the
// neuron's data directory. Published objects are pinned; fetched ones are
// not unless asked. GC (and any write that would pass MaxStoreSize)
// removes unpinned roots and the blocks no pinned root needs. Writes that
// fail (an oversize body, a full store, a bad block) leave the store as it
// was.
//
// # Sharing
//
// With WithNetwork, a library serves blocks on the stream protocol
// /cybertensor/knowledge/1.0.0 and provides what it publishes on the DHT
// (the Routing interface, implemented by *dht.DHT). Fetch finds providers
// (given ones, the announcement's, then the DHT's), verifies every block
// against its CID, penalizes a provider that serves a bad one and carries
// on from another. Publish also hands an encoded Announcement to the
// Announcer, the gossip layer's side; received announcements go to
// Ingest, which keeps them in a remote index so that Search finds what
// others published and Fetch can get it on demand.
//
// # Fetching from a swarm
//
// Fetch asks all its providers at once (a session each, at most 16), not
// one after another, and a library serves the verified blocks of a fetch
// still in progress, so peers fetching the same object at the same moment
// (the validators of a subnet fetching a model a miner just committed,
// each given the others as providers) serve each other. The blocks are
// shared out by rendezvous hashing of CID and peer ID among the fetcher
// and its partial providers (those that answered Missing): each fetches
// its own share from the seeds (providers that answered only with blocks)
// and every other block from the peer whose share it is, asking again
// after a backoff while it answers Missing, so each block leaves the
// miner about once. A share whose owner has served nothing for a while
// (250 ms, longer when the swarm is slow) comes from anyone, seeds too.
// BENCHMARKS.md, "Model artifacts through the swarm", has the figures.
//
// Anyone can make a key and open streams, so the server bounds what a
// peer can make it hold: at most MaxStreams streams at once (being served
// or waiting for a request), MaxStreamsPerPeer of any one peer, and, told
// who is registered (WithRegistry), ReservedStreams of them kept for
// registered neurons. A stream waits at most ReadTimeout for a request,
// which must arrive whole within ReadTimeout of its first byte; a
// request's buffer grows as its bytes arrive rather than taking the
// announced length at once.
//
// # Search
//
// Search ranks objects by BM25 over title (weight 3), tags (2) and, for
// text bodies, the first IndexBodyBytes of the body; announced objects are
// ranked by title and tags.
package knowledge
