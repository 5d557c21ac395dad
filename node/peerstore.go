package node

import (
	"errors"
	"io"
	"slices"
	"sync"

	"github.com/libp2p/go-libp2p/core/peer"
	"github.com/libp2p/go-libp2p/core/peerstore"
	"github.com/libp2p/go-libp2p/core/protocol"
	pstore "github.com/libp2p/go-libp2p/p2p/host/peerstore"
	"github.com/libp2p/go-libp2p/p2p/host/peerstore/pstoremem"
)

// maxProtocolsPerPeer bounds what a peer can make us remember about the
// protocols it speaks (go-libp2p's limit).
const maxProtocolsPerPeer = 128

var errTooManyProtocols = errors.New("node: a peer may list at most 128 protocols")

// addrBook is what go-libp2p's in-memory address book offers: addresses,
// signed peer records, and Close for its garbage collector.
type addrBook interface {
	peerstore.AddrBook
	peerstore.CertifiedAddrBook
	io.Closer
}

// memPeerstore is go-libp2p's in-memory peerstore (its key book, address
// book, metadata and latency metrics) with a lighter protocol book.
type memPeerstore struct {
	peerstore.Metrics
	peerstore.KeyBook
	addrBook
	peerstore.PeerMetadata
	*protoBook
}

var _ peerstore.Peerstore = (*memPeerstore)(nil)

func newPeerstore() *memPeerstore {
	return &memPeerstore{
		Metrics:      pstore.NewMetrics(),
		KeyBook:      pstoremem.NewKeyBook(),
		addrBook:     pstoremem.NewAddrBook(),
		PeerMetadata: pstoremem.NewPeerMetadata(),
		protoBook:    newProtoBook(),
	}
}

// Close stops the address book's garbage collector.
func (ps *memPeerstore) Close() error { return ps.addrBook.Close() }

// PeerInfo returns the peer's ID and known addresses.
func (ps *memPeerstore) PeerInfo(p peer.ID) peer.AddrInfo {
	return peer.AddrInfo{ID: p, Addrs: ps.Addrs(p)}
}

// Peers returns every peer with a key or an address.
func (ps *memPeerstore) Peers() peer.IDSlice {
	ids := append(ps.PeersWithKeys(), ps.PeersWithAddrs()...)
	slices.Sort(ids)
	return slices.Compact(ids)
}

// RemovePeer forgets the peer's keys, protocols, metadata and latency;
// like go-libp2p's, it leaves addresses to expire by their TTL.
func (ps *memPeerstore) RemovePeer(p peer.ID) {
	ps.KeyBook.RemovePeer(p)
	ps.protoBook.RemovePeer(p)
	ps.PeerMetadata.RemovePeer(p)
	ps.Metrics.RemovePeer(p)
}

// protoBook records the protocols each peer speaks: one map under one
// lock, each peer's protocols a short sorted slice. go-libp2p's book
// splits the map into 256 locked segments and keeps a map per peer, which
// costs more memory than a neuron's few dozen peers are worth in lock
// contention.
type protoBook struct {
	mu    sync.RWMutex
	peers map[peer.ID][]protocol.ID
}

var _ peerstore.ProtoBook = (*protoBook)(nil)

func newProtoBook() *protoBook { return &protoBook{peers: map[peer.ID][]protocol.ID{}} }

// sortedSet sorts protos in place and drops duplicates; protos must be a
// slice of the caller's own.
func sortedSet(protos []protocol.ID) []protocol.ID {
	slices.Sort(protos)
	return slices.Compact(protos)
}

func (b *protoBook) GetProtocols(p peer.ID) ([]protocol.ID, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	return slices.Clone(b.peers[p]), nil
}

func (b *protoBook) SetProtocols(p peer.ID, protos ...protocol.ID) error {
	set := sortedSet(slices.Clone(protos))
	if len(set) > maxProtocolsPerPeer {
		return errTooManyProtocols
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if len(set) == 0 {
		delete(b.peers, p)
	} else {
		b.peers[p] = slices.Clip(set)
	}
	return nil
}

func (b *protoBook) AddProtocols(p peer.ID, protos ...protocol.ID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	set := sortedSet(slices.Concat(b.peers[p], protos))
	if len(set) > maxProtocolsPerPeer {
		return errTooManyProtocols
	}
	if len(set) > 0 {
		b.peers[p] = slices.Clip(set)
	}
	return nil
}

func (b *protoBook) RemoveProtocols(p peer.ID, protos ...protocol.ID) error {
	b.mu.Lock()
	defer b.mu.Unlock()
	kept := slices.DeleteFunc(slices.Clone(b.peers[p]), func(x protocol.ID) bool { return slices.Contains(protos, x) })
	if len(kept) == 0 {
		delete(b.peers, p)
	} else {
		b.peers[p] = slices.Clip(kept)
	}
	return nil
}

func (b *protoBook) SupportsProtocols(p peer.ID, protos ...protocol.ID) ([]protocol.ID, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	have := b.peers[p]
	out := make([]protocol.ID, 0, len(protos))
	for _, x := range protos {
		if _, ok := slices.BinarySearch(have, x); ok {
			out = append(out, x)
		}
	}
	return out, nil
}

func (b *protoBook) FirstSupportedProtocol(p peer.ID, protos ...protocol.ID) (protocol.ID, error) {
	b.mu.RLock()
	defer b.mu.RUnlock()
	have := b.peers[p]
	for _, x := range protos {
		if _, ok := slices.BinarySearch(have, x); ok {
			return x, nil
		}
	}
	return "", nil
}

func (b *protoBook) RemovePeer(p peer.ID) {
	b.mu.Lock()
	delete(b.peers, p)
	b.mu.Unlock()
}
